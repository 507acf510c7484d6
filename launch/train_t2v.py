"""Alias of launch/train.py, the one trainer of every task (config.task picks it); kept for old command lines.

  python launch/train.py --config=configs/t2v_demo.py --workdir=W
"""

import os
import runpy

if __name__ == '__main__':
  runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'train.py'), run_name='__main__')

"""Train a text-to-video model (LatteT2V / FrameDiT-H-T2V) on a captioned video folder.

  python launch/train_t2v.py --config=configs/t2v_demo.py --workdir=/tmp/t2v_demo
  python launch/train_t2v.py --config=configs/t2v_pexels.py --workdir=W --config.text.root=/ckpt/Latte-1 ...
"""

import os
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Path to a get_config() file.', lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for the text cache, checkpoint and t2v_run.json.')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  del argv
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.INFO)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.set_visible_devices([], 'GPU')
  from framedit_jax.train.t2v import train_t2v  # pylint: disable=g-import-not-at-top
  try:
    out = train_t2v(_CONFIG.value, _WORKDIR.value)
  except (FileNotFoundError, ValueError, FloatingPointError) as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(1)
  print(f'trained {out["steps"]} steps in {out["seconds"]:.0f} s; final loss {out["losses"][-1]:.4f}; '
        f'checkpoint {out["checkpoint"]}')


if __name__ == '__main__':
  app.run(main)

"""Train (or resume) any task on the one trainer: video diffusion, text-to-video, or the DP-VAE (config.task).

  python launch/train.py --config=configs/demo.py --workdir=/tmp/demo
  python launch/train.py --config=configs/taichi128.py --workdir=W --config.data.data_dir=D
  python launch/train.py --config=configs/t2v_demo.py --workdir=/tmp/t2v_demo
  python launch/train.py --config=configs/dpvae_demo.py --workdir=/tmp/dpvae_demo

A second run with the same --workdir resumes from its latest checkpoint; SIGTERM saves the stop step and exits 0
(docs/trainer.md).
"""

import os
import sys

from absl import flags
from absl import logging
from ml_collections import config_flags

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Path to a get_config() file.', lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints, TensorBoard logs and samples.')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  del argv
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)  # orbax/clu INFO logs are very chatty; --verbosity=0 restores them
  from framedit_jax.train.validate import check_fields  # pylint: disable=g-import-not-at-top
  check_fields(_CONFIG.value)  # one-line config errors before TensorFlow/JAX start
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.set_visible_devices([], 'GPU')  # keep TF (tf.data) off the accelerators
  import jax  # pylint: disable=g-import-not-at-top
  multi_host = (os.environ.get('JAX_COORDINATOR_ADDRESS') or os.environ.get('SLURM_NTASKS', '1') != '1'
                or ',' in os.environ.get('TPU_WORKER_HOSTNAMES', ''))  # TPU pod slice with several hosts
  if multi_host:
    n, pid = os.environ.get('JAX_NUM_PROCESSES'), os.environ.get('JAX_PROCESS_ID')
    if jax.config.jax_platforms == 'cpu':
      jax.config.update('jax_cpu_collectives_implementation', 'gloo')  # CPU processes (tests, localhost)
    if n is not None and pid is not None:  # explicit: JAX_COORDINATOR_ADDRESS + JAX_NUM_PROCESSES + JAX_PROCESS_ID
      jax.distributed.initialize(os.environ['JAX_COORDINATOR_ADDRESS'], int(n), int(pid))
    else:
      jax.distributed.initialize()
  from framedit_jax.train.loop import train_and_evaluate  # pylint: disable=g-import-not-at-top
  try:
    train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  except (FileNotFoundError, ValueError, FloatingPointError) as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(1)


if __name__ == '__main__':
  from framedit_jax.train import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)

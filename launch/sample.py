"""Sample videos from a trained (or converted) model and write numbered mp4s plus a grid.

  python launch/sample.py --config=configs/demo.py --workdir=/tmp/framedit_demo
  python launch/sample.py --config=configs/ucf101_256.py --checkpoint=/ckpt/converted --num_samples=2048 \
      --config.sample.cfg_scale=7 --out_dir=/tmp/ucf_samples

Uses the EMA weights of the latest checkpoint in --workdir (or the params of --checkpoint), DDPM-250 by
default (`--config.sample.sampler=ddim --config.sample.num_steps=50` for DDIM-50).
"""

import os
import sys

from absl import flags
from absl import logging
from ml_collections import config_flags

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Path to a get_config() file.', lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Training workdir whose latest checkpoint (EMA) is used.')
_CHECKPOINT = flags.DEFINE_string('checkpoint', None, 'Converted checkpoint dir (launch/convert_checkpoint.py).')
_OUT = flags.DEFINE_string('out_dir', None, 'Output directory (default <workdir>/samples_<sampler><steps>).')
_NUM = flags.DEFINE_integer('num_samples', None, 'Videos to generate (default config.sample.num_samples).')
_BATCH = flags.DEFINE_integer('batch_size', None, 'Videos per sampling call (default config.sample.batch_size).')
_LABELS = flags.DEFINE_list('labels', None, 'Class labels to cycle through (class-conditional models).')
_SEED = flags.DEFINE_integer('seed', 0, 'Sampling seed.')
_NPY = flags.DEFINE_bool('save_npy', False, 'Also write each video losslessly as uint8 .npy next to its mp4.')
flags.mark_flag_as_required('config')


def main(argv):
  del argv
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)  # orbax/clu INFO logs are very chatty; --verbosity=0 restores them
  if not (_WORKDIR.value or _CHECKPOINT.value):
    print('error: pass --workdir (a training run) or --checkpoint (a converted checkpoint).', file=sys.stderr)
    sys.exit(1)
  from framedit_jax.train.experiment import sample_to_dir  # pylint: disable=g-import-not-at-top
  from framedit_jax.train.generate import sampler_name  # pylint: disable=g-import-not-at-top
  config = _CONFIG.value
  out_dir = _OUT.value or os.path.join(_WORKDIR.value or _CHECKPOINT.value, f'samples_{sampler_name(config)}')
  labels = [int(x) for x in _LABELS.value] if _LABELS.value else None
  try:
    sample_to_dir(config, out_dir, workdir=_WORKDIR.value, checkpoint=_CHECKPOINT.value,
                  num_samples=_NUM.value, batch_size=_BATCH.value, labels=labels, seed=_SEED.value,
                  save_npy=_NPY.value)
  except (FileNotFoundError, ValueError) as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(1)


if __name__ == '__main__':
  from framedit_jax.train import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)

"""Train (or resume) a DP-VAE (VideoDiT's distribution-preserving 3D VAE).

  python launch/train_vae.py --config=configs/dpvae_demo.py --workdir=/tmp/dpvae_demo

A second run with the same --workdir resumes from its latest checkpoint. The trained codec is exported to
<workdir>/dpvae_export (use it as --config.vae.checkpoint with --config.vae.name=dpvae). The LPIPS term (weight
config.dpvae.weights.lpips) needs --config.dpvae.lpips_weights=lpips_vgg.npz (python -m
framedit_jax.eval.lpips_convert); without it training runs without that term and says so.
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
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints, TensorBoard logs and videos.')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  del argv
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.set_visible_devices([], 'GPU')
  from framedit_jax.eval.lpips import make_lpips_fn  # pylint: disable=g-import-not-at-top
  from framedit_jax.train.dpvae_loop import train_dpvae  # pylint: disable=g-import-not-at-top
  try:
    weights = _CONFIG.value.dpvae.get('lpips_weights')  # converted LPIPS .npz (framedit_jax.eval.lpips_convert)
    perceptual_fn = make_lpips_fn(weights) if weights else None
    train_dpvae(_CONFIG.value, _WORKDIR.value, perceptual_fn=perceptual_fn)
  except (FileNotFoundError, ValueError, FloatingPointError) as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(1)


if __name__ == '__main__':
  app.run(main)

r"""Encode a video dataset once with the VAE and store the posterior parameters (the latent cache).

  python launch/prepare_latents.py --config=configs/taichi256.py --split=train \
      --config.vae.checkpoint=/path/sd-vae-ft-ema/diffusion_pytorch_model.safetensors \
      --config.data.latents_dir=/data/latents/taichi256

Then train with --config.data.use_latents=True --config.data.latents_dir=/data/latents/taichi256.
Format and sampling rules: framedit_jax/vae/latent_cache.py.

DP-VAE (--config.vae.name=dpvae --config.vae.checkpoint=<dpvae_export dir>): its GoPs are not encoded
independently, so the cache stores whole training clips, one per window start the clip recipe can draw, for
the config's data.num_frames / frame_interval / temporal_mode (the reader refuses other values). That is
about num_frames times the encoding work of a per-frame cache; --start_stride=k caches every k-th start only
(clips then start at the cached start at or below the drawn one).
"""

import os
import sys

from absl import flags
from ml_collections import config_flags

# Configs import `configs.default`: make the repository root importable.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Experiment config file.', lock_config=True)
_SPLIT = flags.DEFINE_string('split', 'train', 'Dataset split to encode.')
_FLIP = flags.DEFINE_enum('flip', 'auto', ['auto', 'true', 'false'],
                          'Also store the mirrored videos (auto: when the dataset trains with random flips).')
_DTYPE = flags.DEFINE_enum('dtype', 'float32', ['float32', 'float16'], 'On-disk dtype of mean/logvar.')
_SHARD_FRAMES = flags.DEFINE_integer('shard_frames', 2048, 'Frames per .npy shard.')
_MAX_VIDEOS = flags.DEFINE_integer('max_videos', None, 'Encode only the first N videos (smoke test).')
_START_STRIDE = flags.DEFINE_integer('start_stride', 1, 'DP-VAE clip caches: cache every k-th clip start.')


def main(argv):
  del argv
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.set_visible_devices([], 'GPU')
  from framedit_jax.vae import load_vae  # pylint: disable=g-import-not-at-top
  from framedit_jax.vae.cache_builder import build_latent_cache  # pylint: disable=g-import-not-at-top
  config = _CONFIG.value
  vae = load_vae(config.vae)
  flip = {'auto': None, 'true': True, 'false': False}[_FLIP.value]
  index = build_latent_cache(config, _SPLIT.value, vae, flip=flip, dtype=_DTYPE.value,
                             shard_frames=_SHARD_FRAMES.value, max_videos=_MAX_VIDEOS.value,
                             start_stride=_START_STRIDE.value)
  print(f'wrote {len(index["videos"])} videos, latent shape {index["latent_shape"]}, '
        f'{len(index["shards"])} shards')


if __name__ == '__main__':
  from framedit_jax.train import cli  # pylint: disable=g-import-not-at-top
  flags.mark_flags_as_required(['config'])
  cli.run(main)

"""Builds the latent cache of one split: read every video through framedit_jax.data, encode, store.

Each video of the prepared TFDS split (`framedit_jax.data.pipeline.get_builder` / `ClipSource`, example order
kept) is decoded in segments of `segment_frames` frames, passed through the dataset's deterministic spatial
transform (`transforms.spatial_transform`, no flip) to `data.image_size`, and encoded frame by frame with
`vae.encode_moments`. With flipping on (default: the dataset's random-flip rule) the mirrored video is
encoded too. See `latent_cache` for the format.
"""

import time

from absl import logging
import numpy as np

from framedit_jax.data import clip_recipe
from framedit_jax.data import decode
from framedit_jax.data import pipeline
from framedit_jax.data import transforms
from framedit_jax.vae import latent_cache


def _encode_video(vae, frames, image_size, spatial, flip, segment_frames):
  """jpeg frame list -> (mean, logvar) each (T, h, w, C) float32 numpy."""
  means, logvars = [], []
  for s in range(0, len(frames), segment_frames):
    clip = np.stack([decode.decode_jpeg(f) for f in frames[s:s + segment_frames]])
    x = transforms.spatial_transform(clip, image_size, spatial, flip)
    mean, logvar = vae.encode_moments(x[None])
    means.append(np.asarray(mean[0]))
    logvars.append(np.asarray(logvar[0]))
  return np.concatenate(means), np.concatenate(logvars)


def build_latent_cache(config, split, vae, *, flip=None, dtype='float32', shard_frames=2048,
                       segment_frames=64, max_videos=None):
  """Encodes `config.data.dataset`/`split` with `vae` into `<config.data.latents_dir>/<split>/`.

  Args:
    config: ConfigDict (data.{dataset, data_dir, manual_dir, image_size, latents_dir}, vae.*).
    split: TFDS split to encode (all of its videos, all frames).
    vae: from `framedit_jax.vae.load_vae` (`encode_moments` is used; its chunk_size bounds memory).
    flip: also store the mirrored video's moments; None = the dataset's random-flip rule.
    dtype: 'float32' or 'float16' on disk.
    shard_frames: frames per .npy shard (approximate; a video is never split).
    segment_frames: frames decoded and transformed at once (bounds host memory for long videos).
    max_videos: encode only the first N videos (smoke tests).
  Returns:
    The written index dict.
  """
  if not config.data.get('latents_dir', None):
    raise ValueError('data.latents_dir is not set: pass --config.data.latents_dir=DIR for the latent cache.')
  if int(getattr(vae, 'temporal_downsample', 1)) > 1:
    raise ValueError(f'config.vae.name={config.vae.name!r} encodes whole clips (GoPs of t_g frames at the training '
                     'frame_interval), which a per-frame latent cache cannot store; train with '
                     'data.use_latents=False (clips are encoded on the fly).')
  recipe = clip_recipe.ClipRecipe.from_config(config)
  source = pipeline.ClipSource(pipeline.get_builder(config), split)
  flip = recipe.flip if flip is None else bool(flip)
  out_dir = latent_cache.split_dir(config.data.latents_dir, split)
  vae_meta = {'name': config.vae.name, 'checkpoint': config.vae.get('checkpoint'),
              'latent_channels': vae.latent_channels, 'downsample': vae.downsample}
  writer = latent_cache.LatentCacheWriter(
      out_dir, dict(dataset=config.data.dataset, split=split, image_size=int(config.data.image_size),
                    spatial_mode=recipe.spatial, scale_factor=float(config.vae.scale_factor), vae=vae_meta,
                    flipped=flip),
      dtype=dtype, shard_frames=shard_frames)
  n = len(source) if max_videos is None else min(len(source), int(max_videos))
  t0, total = time.time(), 0
  for i in range(n):
    frames, label = source.record(i)
    frames = list(frames)
    mean, logvar = _encode_video(vae, frames, recipe.image_size, recipe.spatial, False, segment_frames)
    extra = {}
    if flip:
      extra['flip_mean'], extra['flip_logvar'] = _encode_video(vae, frames, recipe.image_size, recipe.spatial,
                                                               True, segment_frames)
    writer.add(mean, logvar, label=label, **extra)
    total += len(frames)
    logging.info('latent cache %s: video %d/%d (%d frames), %.1f frames/s', split, i + 1, n, len(frames),
                 total * (1 + flip) / (time.time() - t0))
  return writer.close()

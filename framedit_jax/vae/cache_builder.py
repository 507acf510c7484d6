"""Builds the latent cache of one split: read every video through framedit_jax.data, encode, store.

Each video of the prepared TFDS split (`framedit_jax.data.pipeline.get_builder` / `ClipSource`, example order
kept) is decoded in segments of `segment_frames` frames, passed through the dataset's deterministic spatial
transform (`transforms.spatial_transform`, no flip) to `data.image_size`, and encoded frame by frame with
`vae.encode_moments`. With flipping on (default: the dataset's random-flip rule) the mirrored video is
encoded too. A captioned dataset (`text_video_folder`) also stores each video's caption in the index, so the
T2V task trains from the cache without the TFDS records. See `latent_cache` for the format.

A temporally compressing VAE (DP-VAE, `vae.temporal_downsample` = t_g > 1) cannot be cached frame by frame,
nor GoP by GoP: its residual encoder's temporal convolutions and clip-wide GroupNorms make a GoP's latent
depend on the neighbouring GoPs of the same clip (an encoded 2-GoP clip differs from its two 1-GoP
encodings once the temporal layers are trained). So whole training clips are cached instead: for every
window start the clip recipe can draw (`clip_recipe.window_start`: 0 .. max(0, n - num_frames *
frame_interval - 1)), optionally every `start_stride`-th one, the clip `clip_recipe.clip_indices(start, ...)`
is encoded exactly as the pixel pipeline encodes it on the fly (see `latent_cache`, "clip caches").
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


def _clip_starts(num_source_frames, recipe, start_stride):
  """The cached window starts of a video: every `start_stride`-th start `clip_recipe.window_start` can draw."""
  last = max(0, num_source_frames - recipe.num_frames * recipe.frame_interval - 1)
  return list(range(0, last + 1, start_stride))


def _encode_clips(vae, frames, recipe, starts, flips, batch):
  """Moments of the clip at every start: {flip: (len(starts) * T/t_g, h, w, 2C) float32}, clips in `starts`
  order. Clips are encoded `batch` at a time (the last batch padded, so one compiled shape serves all)."""
  n = len(frames)
  out = {f: [] for f in flips}
  for b in range(0, len(starts), batch):
    chunk = starts[b:b + batch]
    idx = np.stack([clip_recipe.clip_indices(s, n, recipe.num_frames, recipe.frame_interval, recipe.temporal)
                    for s in chunk])
    lo, hi = int(idx.min()), int(idx.max())
    seg = np.stack([decode.decode_jpeg(f) for f in frames[lo:hi + 1]])
    idx = np.concatenate([idx, np.repeat(idx[-1:], batch - len(chunk), 0)]) - lo
    for f in flips:
      x = transforms.spatial_transform(seg, recipe.image_size, recipe.spatial, f)[idx]  # (batch, T, H, W, 3)
      mean, logvar = vae.encode_moments(x)
      moments = np.concatenate([np.asarray(mean), np.asarray(logvar)], -1)[:len(chunk)]
      out[f].append(moments.reshape((-1,) + moments.shape[2:]))
  return {f: np.concatenate(v) for f, v in out.items()}


def _build_clip_cache(config, split, vae, recipe, source, flip, dtype, shard_frames, max_videos, start_stride):
  """The DP-VAE cache: encoded whole clips at every window start (module docstring, `latent_cache`)."""
  t_g = int(vae.temporal_downsample)
  d = config.data
  if int(d.get('use_image_num', 0) or 0):
    raise ValueError(f'config.vae.name={config.vae.name!r} (t_g={t_g}) trains without image-joint frames: set '
                     'data.use_image_num=0.')
  if start_stride < 1:
    raise ValueError(f'start_stride={start_stride} must be >= 1.')
  latent_t = vae.latent_frames(recipe.num_frames)  # ValueError unless num_frames % t_g == 0
  out_dir = latent_cache.split_dir(d.latents_dir, split)
  vae_meta = {'name': config.vae.name, 'checkpoint': config.vae.get('checkpoint'),
              'latent_channels': vae.latent_channels, 'downsample': vae.downsample, 't_g': t_g}
  clips_meta = {'num_frames': recipe.num_frames, 'frame_interval': recipe.frame_interval, 't_g': t_g,
                'temporal_mode': recipe.temporal, 'start_stride': int(start_stride), 'latent_frames': latent_t}
  writer = latent_cache.LatentCacheWriter(
      out_dir, dict(dataset=d.dataset, split=split, image_size=int(d.image_size), spatial_mode=recipe.spatial,
                    scale_factor=float(config.vae.scale_factor), vae=vae_meta, flipped=flip, clips=clips_meta),
      dtype=dtype, shard_frames=shard_frames)
  n = len(source) if max_videos is None else min(len(source), int(max_videos))
  batch = max(1, int(getattr(vae, 'chunk_size', 16)))
  t0, total = time.time(), 0
  for i in range(n):
    frames, label, caption = source.full_record(i)
    frames = list(frames)
    extra = {} if caption is None else {'caption': caption}
    starts = _clip_starts(len(frames), recipe, start_stride)
    m = _encode_clips(vae, frames, recipe, starts, (False, True) if flip else (False,), batch)
    if flip:
      extra['flip_mean'], extra['flip_logvar'] = np.split(m[True], 2, -1)
    mean, logvar = np.split(m[False], 2, -1)
    writer.add(mean, logvar, label=label, num_frames=len(frames), num_starts=len(starts), **extra)
    total += len(starts)
    logging.info('latent clip cache %s: video %d/%d (%d frames, %d clips), %.1f clips/s', split, i + 1, n,
                 len(frames), len(starts), total * (1 + flip) / (time.time() - t0))
  return writer.close()


def build_latent_cache(config, split, vae, *, flip=None, dtype='float32', shard_frames=2048,
                       segment_frames=64, max_videos=None, start_stride=1):
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
    start_stride: DP-VAE (clip) caches only: cache every k-th window start (k times less work and disk; the
      reader then uses the cached start at or below the drawn one, so clips no longer match the pixel
      pipeline's exactly). 1 = every start, the pixel pipeline's clips.
  Returns:
    The written index dict.
  """
  if not config.data.get('latents_dir', None):
    raise ValueError('data.latents_dir is not set: pass --config.data.latents_dir=DIR for the latent cache.')
  recipe = clip_recipe.ClipRecipe.from_config(config)
  source = pipeline.ClipSource(pipeline.get_builder(config), split)
  flip = recipe.flip if flip is None else bool(flip)
  if int(getattr(vae, 'temporal_downsample', 1)) > 1:
    return _build_clip_cache(config, split, vae, recipe, source, flip, dtype, shard_frames, max_videos,
                             int(start_stride))
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
    frames, label, caption = source.full_record(i)
    frames = list(frames)
    mean, logvar = _encode_video(vae, frames, recipe.image_size, recipe.spatial, False, segment_frames)
    extra = {} if caption is None else {'caption': caption}
    if flip:
      extra['flip_mean'], extra['flip_logvar'] = _encode_video(vae, frames, recipe.image_size, recipe.spatial,
                                                               True, segment_frames)
    writer.add(mean, logvar, label=label, **extra)
    total += len(frames)
    logging.info('latent cache %s: video %d/%d (%d frames), %.1f frames/s', split, i + 1, n, len(frames),
                 total * (1 + flip) / (time.time() - t0))
  return writer.close()

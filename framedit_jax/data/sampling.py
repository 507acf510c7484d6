"""Clip frame indices (official TemporalRandomCrop + per-dataset index rule) and per-example randomness.

Source: official datasets/video_transforms.py `TemporalRandomCrop`; taichi/sky take every
`frame_interval`-th frame from the window start (official *_image_datasets.py slice
`vframes[idx[0]:idx[-1]+1:frame_interval]`), ucf101/ffs take `np.linspace(start, end - 1, num_frames)`.
"""

import numpy as np

TEMPORAL_MODES = ('stride', 'linspace')


def window_start(rng, total_frames, window):
  """Uniform start in [0, max(0, total_frames - window - 1)] (official TemporalRandomCrop)."""
  rand_end = max(0, total_frames - window - 1)
  return int(rng.integers(0, rand_end + 1))


def clip_indices(start, total_frames, num_frames, frame_interval, mode):
  """Frame indices of one clip, (num_frames,) int64, clamped to the video (short videos repeat the last frame).

  Args:
    start: first frame of the window (from `window_start`).
    total_frames: frames in the video.
    num_frames, frame_interval: clip length and temporal stride; the window is num_frames * frame_interval.
    mode: 'stride' (start + k * frame_interval) or 'linspace' (linspace(start, end - 1, num_frames), end =
      min(start + window, total_frames), truncated to int as `np.linspace(..., dtype=int)`).
  """
  if mode == 'stride':
    idx = start + frame_interval * np.arange(num_frames, dtype=np.int64)
  elif mode == 'linspace':
    end = min(start + num_frames * frame_interval, total_frames)
    idx = np.linspace(start, end - 1, num_frames).astype(np.int64)
  else:
    raise ValueError(f'data.temporal_mode={mode!r}: use one of {TEMPORAL_MODES}')
  return np.clip(idx, 0, total_frames - 1)


def example_rng(seed, stream, position):
  """Independent generator for stream position `position` (pure function of its arguments)."""
  return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, stream, int(position)]))


def epoch_permutation(seed, epoch, n):
  """Order of the n examples in epoch `epoch` (pure function of seed and epoch)."""
  return example_rng(seed, 1, epoch).permutation(n)

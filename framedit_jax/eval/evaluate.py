"""FVD of a sample folder against real videos, always with a real-vs-real baseline at the same N.

Used by ``launch/eval.py``. Real clips come either from a folder of videos (StyleGAN-V clip selection,
``fvd.sample_real_clips``) or from any iterator of already cut clips (e.g. ``framedit_jax.data`` batches).
"""

from __future__ import annotations

import itertools
from typing import Callable, Iterable, Iterator

import numpy as np

from framedit_jax.eval import frechet
from framedit_jax.eval import fvd


def _features(clips: Iterable, extractor: Callable, batch_size: int) -> np.ndarray:
  out = [np.asarray(extractor(b), np.float64) for b in fvd._batched(clips, batch_size)]  # pylint: disable=protected-access
  return np.concatenate(out) if out else np.zeros((0, 400))


def clips_from_batches(batches: Iterable[dict], num_frames: int = fvd.NUM_FRAMES) -> Iterator[np.ndarray]:
  """Unbatches ``{'video': (B, T, H, W, 3)}`` dicts into (num_frames, H, W, 3) clips (first frames)."""
  for b in batches:
    for v in np.asarray(b['video']):
      yield fvd.fake_clip(v, num_frames)


def fvd_with_baseline(fake_videos: Iterable, real_clips: Iterable, extractor: Callable, *,
                      num_videos: int = fvd.NUM_VIDEOS, num_frames: int = fvd.NUM_FRAMES,
                      batch_size: int = 8, ddof: int = 1) -> dict:
  """FVD(samples, real half A) and FVD(real half A, real half B), all three sets of the same size N.

  Args:
    fake_videos: iterable of (T, H, W, 3) samples; first ``num_frames`` frames of the first ``num_videos``.
    real_clips: iterable of (num_frames, H, W, 3) real clips in selection order (already seeded/strided);
      up to 2 N are consumed: the first N form half A, the next N half B.
    extractor: features callable, e.g. ``fvd.I3DFeatureExtractor``.

  Returns:
    dict with ``fvd``, ``fvd_real_vs_real``, ``num_videos`` (N) and the fake/real counts seen.
  """
  fake = _features((fvd.fake_clip(np.asarray(v), num_frames) for v in itertools.islice(fake_videos, num_videos)),
                   extractor, batch_size)
  if len(fake) < 2:
    raise ValueError(f'need at least 2 generated videos for FVD, got {len(fake)}.')
  real = _features(itertools.islice(real_clips, 2 * len(fake)), extractor, batch_size)
  n = min(len(fake), len(real) // 2)
  if n < 2:
    raise ValueError(f'need at least 4 real clips for FVD and its real-vs-real baseline, got {len(real)}.')
  stats = [frechet.GaussianStats.from_features(x) for x in (fake[:n], real[:n], real[n:2 * n])]
  return {
      'fvd': frechet.frechet_distance_from_stats(stats[0], stats[1], ddof),
      'fvd_real_vs_real': frechet.frechet_distance_from_stats(stats[1], stats[2], ddof),
      'num_videos': n,
      'num_fake_seen': int(len(fake)),
      'num_real_seen': int(len(real)),
  }

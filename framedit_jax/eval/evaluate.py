"""FVD (plus FID and IS when their networks are given) of samples against real videos, always with a
real-vs-real baseline at the same N.

Used by ``launch/eval.py``. Real clips come either from a folder of videos (StyleGAN-V clip selection,
``fvd.sample_real_clips``) or from any iterator of already cut clips (e.g. ``framedit_jax.data`` batches).
"""

from __future__ import annotations

import itertools
from typing import Callable, Iterable, Iterator

import numpy as np

from framedit_jax.eval import fid
from framedit_jax.eval import frechet
from framedit_jax.eval import fvd
from framedit_jax.eval import resize


def _features(clips: Iterable, extractors: dict[str, Callable], batch_size: int) -> dict[str, np.ndarray]:
  """One pass over the clips; each extractor maps a (B, T, H, W, 3) batch to a (B, ...) array or a dict of them."""
  out: dict[str, list] = {}
  for b in fvd._batched(clips, batch_size):  # pylint: disable=protected-access
    for name, ex in extractors.items():
      feats = ex(b)
      items = feats.items() if isinstance(feats, dict) else [('', feats)]
      for k, v in items:
        out.setdefault(f'{name}/{k}' if k else name, []).append(np.asarray(v))
  return {k: np.concatenate(v) for k, v in out.items()}


def clips_from_batches(batches: Iterable[dict], num_frames: int = fvd.NUM_FRAMES) -> Iterator[np.ndarray]:
  """Unbatches ``{'video': (B, T, H, W, 3)}`` dicts into (num_frames, H, W, 3) clips (first frames)."""
  for b in batches:
    for v in np.asarray(b['video']):
      yield fvd.fake_clip(v, num_frames)


def evaluate_with_baseline(fake_videos: Iterable, real_clips: Iterable, i3d_extractor: Callable, *,
                           inception_extractor=None, c3d_extractor: Callable | None = None,
                           num_videos: int = fvd.NUM_VIDEOS, num_frames: int = fvd.NUM_FRAMES,
                           batch_size: int = 8, ddof: int = 1, is_splits: int = 1,
                           c3d_is_splits: int = 10, motion_extractor: Callable | None = None,
                           motion_resolution: int = 256) -> dict:
  """FVD (and FID / IS where the networks are given) of samples against real clips, each with a real baseline.

  All metrics see the same N clips per set: samples (first ``num_frames`` frames), real half A (the first N
  real clips) and real half B (the next N).

  * ``fvd`` = FVD(samples, A), ``fvd_real_vs_real`` = FVD(A, B) (I3D logits, StyleGAN-V protocol).
  * ``is_i3d`` / ``is_i3d_real``: IS of the I3D Kinetics-400 logits of samples / of A (one split: the
    official FrameDiT ``is``).
  * with ``inception_extractor`` (``fid.InceptionFeatureExtractor``): ``fid`` = FID(samples, A) and
    ``fid_real_vs_real`` = FID(A, B) over all frames' 2048-d pool features; ``is_inception`` /
    ``is_inception_real``: frame IS over the 1008 bias-free logits with ``is_splits`` splits. Frame features
    are held in float32 on the host (N T x 2048 x 4 B: 256 MiB per set at N=2048, T=16).
  * with ``c3d_extractor`` (``c3d.C3DFeatureExtractor``, needs 16 frames): ``is_c3d`` / ``is_c3d_real`` (and
    ``*_std``), the UCF-101 IS, ``c3d_is_splits`` splits after a seed-42 shuffle as StyleGAN-V's ``isv``.
  * with ``motion_extractor`` (``motion_extractor.MotionFeatureExtractor``, needs >= 16 frames): ``fvmd`` =
    FVMD(samples, A) and ``fvmd_real_vs_real`` = FVMD(A, B) over the PIPs++ motion histograms of the first 16
    frames of each clip, made ``motion_resolution``-square first as the official loader (``resize.square_frames``).

  Args:
    fake_videos: iterable of (T, H, W, 3) samples.
    real_clips: iterable of (num_frames, H, W, 3) real clips in selection order; up to 2 N are consumed.
    i3d_extractor: (B, T, H, W, 3) -> (B, 400), e.g. ``fvd.I3DFeatureExtractor``.

  Raises:
    ValueError: fewer than 2 samples or 4 real clips.
  """
  extractors = {'i3d': i3d_extractor}
  if inception_extractor is not None:
    extractors['inception'] = getattr(inception_extractor, 'videos', inception_extractor)
  if c3d_extractor is not None:
    extractors['c3d'] = c3d_extractor
  if motion_extractor is not None:
    if num_frames < 16:
      raise ValueError(f'FVMD needs 16-frame clips, got num_frames={num_frames}.')
    extractors['fvmd'] = lambda b: motion_extractor(
        np.stack([resize.square_frames(c[:16], motion_resolution) for c in b]))
  fake = _features((fvd.fake_clip(np.asarray(v), num_frames) for v in itertools.islice(fake_videos, num_videos)),
                   extractors, batch_size)
  n_fake = len(fake.get('i3d', ()))
  if n_fake < 2:
    raise ValueError(f'need at least 2 generated videos for FVD, got {n_fake}.')
  real = _features(itertools.islice(real_clips, 2 * n_fake), extractors, batch_size)
  n_real = len(real.get('i3d', ()))
  n = min(n_fake, n_real // 2)
  if n < 2:
    raise ValueError(f'need at least 4 real clips for FVD and its real-vs-real baseline, got {n_real}.')
  sets = {'fake': {k: v[:n] for k, v in fake.items()}, 'real': {k: v[:n] for k, v in real.items()},
          'real_b': {k: v[n:2 * n] for k, v in real.items()}}

  def frechet_of(key, a, b):  # per-frame features (N, T, D) are pooled into N T samples
    sa, sb = (frechet.GaussianStats.from_features(sets[s][key].reshape(-1, sets[s][key].shape[-1])) for s in (a, b))
    return frechet.frechet_distance_from_stats(sa, sb, ddof)

  res = {
      'fvd': frechet_of('i3d', 'fake', 'real'),
      'fvd_real_vs_real': frechet_of('i3d', 'real', 'real_b'),
      'num_videos': n,
      'num_fake_seen': n_fake,
      'num_real_seen': n_real,
      'is_i3d': fid.inception_score(sets['fake']['i3d'])[0],
      'is_i3d_real': fid.inception_score(sets['real']['i3d'])[0],
  }
  if inception_extractor is not None:
    res['fid'] = frechet_of('inception/pool', 'fake', 'real')
    res['fid_real_vs_real'] = frechet_of('inception/pool', 'real', 'real_b')
    for s, suffix in (('fake', ''), ('real', '_real')):
      logits = sets[s]['inception/logits_unbiased']
      res['is_inception' + suffix], res['is_inception' + suffix + '_std'] = fid.inception_score(
          logits.reshape(-1, logits.shape[-1]), is_splits)
  if c3d_extractor is not None:
    for s, suffix in (('fake', ''), ('real', '_real')):
      res['is_c3d' + suffix], res['is_c3d' + suffix + '_std'] = fid.inception_score(
          sets[s]['c3d'], min(c3d_is_splits, n), shuffle_seed=42)
  if motion_extractor is not None:
    res['fvmd'] = frechet_of('fvmd', 'fake', 'real')
    res['fvmd_real_vs_real'] = frechet_of('fvmd', 'real', 'real_b')
  return res


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
  res = evaluate_with_baseline(fake_videos, real_clips, extractor, num_videos=num_videos,
                               num_frames=num_frames, batch_size=batch_size, ddof=ddof)
  return {k: res[k] for k in ('fvd', 'fvd_real_vs_real', 'num_videos', 'num_fake_seen', 'num_real_seen')}

"""Fréchet Video Distance under the StyleGAN-V ``fvd2048_16f`` protocol.

Protocol (StyleGAN-V ``metrics/frechet_video_distance.py``; official FrameDiT ``tools/cal_metrics.py``):

* real clips: 16 consecutive frames taken every ``stride`` frames (3 in StyleGAN-V; the Latte/FrameDiT
  authors used 6 for Taichi-HD) from a random, seeded offset; videos shorter than ``(16 - 1) * stride + 1``
  frames are discarded; optional mirroring doubles the pool with horizontally flipped copies; a seeded
  subset of ``num_videos`` (2048) items is drawn without replacement;
* fake clips: the first 16 frames of each generated video;
* features: I3D Kinetics-400 logits before softmax, time averaged (``i3d.py``), inputs resized to 224 with
  bilinear, no antialias, in [-1, 1];
* statistics: float64 mean and covariance (``ddof=1``, as ``np.cov``), Fréchet distance (``frechet.py``).

Video arrays everywhere are (B, T, H, W, 3) — or (T, H, W, 3) for one video — ``uint8`` in [0, 255] or
float in [-1, 1].
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterable, Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from framedit_jax.eval import frechet
from framedit_jax.eval import i3d
from framedit_jax.eval import i3d_weights

NUM_FRAMES = 16
NUM_VIDEOS = 2048


class I3DFeatureExtractor:
  """Batched, jitted I3D logits (the FVD features).

  Calling it with (B, T, H, W, 3) videos (uint8 or float in [-1, 1], T >= 9) returns (B, 400) float32
  time-averaged logits. Inputs are processed in fixed chunks of ``batch_size`` (the last one zero-padded), so
  one compilation serves any B.

  Args:
    variables: Flax variables for ``i3d.InceptionI3d``; default: the real Kinetics-400 weights
      (``i3d_weights.load_i3d_variables(weights_path)``).
    weights_path: optional converted ``.npz``.
    batch_size: chunk size of each jitted call.
  """

  def __init__(self, variables=None, weights_path: str | None = None, batch_size: int = 8):
    if variables is None:
      variables = i3d_weights.load_i3d_variables(weights_path)
    self.variables = jax.tree_util.tree_map(jnp.asarray, variables)
    self.batch_size = int(batch_size)
    model = i3d.InceptionI3d()
    self._forward = jax.jit(lambda v, x: model.apply(v, i3d.preprocess(x)))

  def __call__(self, videos) -> np.ndarray:
    videos = np.asarray(videos)
    if videos.ndim != 5:
      raise ValueError(f'videos must be (B, T, H, W, 3), got shape {videos.shape}.')
    if videos.shape[1] < i3d.MIN_FRAMES:
      raise ValueError(f'I3D needs at least {i3d.MIN_FRAMES} frames per video, got T={videos.shape[1]}.')
    out = []
    for s in range(0, videos.shape[0], self.batch_size):
      chunk = videos[s:s + self.batch_size]
      n = chunk.shape[0]
      if n < self.batch_size:
        pad = np.zeros((self.batch_size - n,) + chunk.shape[1:], chunk.dtype)
        chunk = np.concatenate([chunk, pad])
      out.append(np.asarray(self._forward(self.variables, chunk))[:n])
    return np.concatenate(out) if out else np.zeros((0, 400), np.float32)


def real_clip(video, start: int, num_frames: int = NUM_FRAMES, stride: int = 3, mirror: bool = False):
  """(num_frames, H, W, 3) clip of frames ``start, start + stride, ...`` of a (T, H, W, 3) video.

  Raises:
    ValueError: if the video is too short.
  """
  need = (num_frames - 1) * stride + 1
  if start < 0 or start + need > video.shape[0]:
    raise ValueError(f'video of {video.shape[0]} frames is too short for {num_frames} frames at stride '
                     f'{stride} from {start}.')
  clip = video[start:start + need:stride]
  return clip[:, :, ::-1] if mirror else clip


def sample_real_clips(videos: Sequence, num_videos: int = NUM_VIDEOS, num_frames: int = NUM_FRAMES,
                      stride: int = 3, mirror: bool = False, seed: int = 0) -> Iterator[np.ndarray]:
  """Seeded StyleGAN-V real-clip selection from a random-access sequence of (T, H, W, 3) videos.

  Short videos are discarded; with ``mirror`` every video also appears flipped; ``min(num_videos, pool)``
  items are drawn without replacement, each with a uniformly random start offset. Yields (num_frames, H, W,
  3) clips in draw order. Deterministic given ``seed``.
  """
  rng = np.random.default_rng(seed)
  need = (num_frames - 1) * stride + 1
  lengths = [len(v) for v in videos]
  pool = [(i, f) for i, n in enumerate(lengths) if n >= need for f in ((False, True) if mirror else (False,))]
  if not pool:
    raise ValueError(f'no real video has the {need} frames needed for {num_frames} frames at stride {stride}.')
  picks = rng.choice(len(pool), size=min(num_videos, len(pool)), replace=False)
  for p in picks:
    i, flip = pool[p]
    start = int(rng.integers(0, lengths[i] - need + 1))
    yield real_clip(np.asarray(videos[i]), start, num_frames, stride, flip)


def fake_clip(video, num_frames: int = NUM_FRAMES):
  """First ``num_frames`` frames of a (T, H, W, 3) generated video (StyleGAN-V fakes)."""
  if video.shape[0] < num_frames:
    raise ValueError(f'generated video has {video.shape[0]} frames, FVD needs {num_frames}; sample longer videos.')
  return video[:num_frames]


def _batched(clips: Iterable, batch_size: int) -> Iterator[np.ndarray]:
  buf = []
  for c in clips:
    buf.append(np.asarray(c))
    if len(buf) == batch_size:
      yield np.stack(buf)
      buf = []
  if buf:
    yield np.stack(buf)


def stats_from_clips(clips: Iterable, extractor: Callable, batch_size: int = 8,
                     max_clips: int | None = None) -> frechet.GaussianStats:
  """Streams (T, H, W, 3) clips through ``extractor`` into float64 ``GaussianStats`` (at most ``max_clips``)."""
  stats = None
  count = 0
  for batch in _batched(clips, batch_size):
    if max_clips is not None:
      batch = batch[:max_clips - count]
    feats = np.asarray(extractor(batch), np.float64)
    stats = frechet.GaussianStats.from_features(feats) if stats is None else stats.update(feats)
    count += batch.shape[0]
    if max_clips is not None and count >= max_clips:
      break
  if stats is None:
    raise ValueError('no clips to compute FVD statistics from.')
  return stats


@dataclasses.dataclass
class FVDResult:
  fvd: float
  real: frechet.GaussianStats
  fake: frechet.GaussianStats


def compute_fvd(real_videos: Sequence, fake_videos: Iterable, extractor: Callable | None = None, *,
                num_videos: int = NUM_VIDEOS, num_frames: int = NUM_FRAMES, real_stride: int = 3,
                mirror: bool = False, seed: int = 0, batch_size: int = 8, ddof: int = 1,
                cross_process: bool = False) -> FVDResult:
  """FVD of generated videos against real videos with the ``fvd2048_16f`` protocol.

  Args:
    real_videos: random-access sequence of (T, H, W, 3) real videos (uint8 or [-1, 1] floats).
    fake_videos: iterable of (T', H', W', 3) generated videos, T' >= num_frames; the first ``num_videos``
      are used.
    extractor: features callable, default ``I3DFeatureExtractor()`` on the real weights.
    num_videos: clips per side (2048 in the paper protocol); fewer are used when fewer exist.
    num_frames: frames per clip (16).
    real_stride: real-clip frame step (3; 6 for Taichi-HD as in Latte/FrameDiT).
    mirror: add horizontally flipped real videos to the selection pool.
    seed: seed of the real-clip selection.
    ddof: covariance divisor, 1 (N-1, StyleGAN-V) or 0 (N).
    cross_process: merge statistics over JAX processes (each host passes its own share of videos).

  Returns:
    ``FVDResult(fvd, real_stats, fake_stats)``.
  """
  extractor = extractor or I3DFeatureExtractor(batch_size=batch_size)
  real = stats_from_clips(sample_real_clips(real_videos, num_videos, num_frames, real_stride, mirror, seed),
                          extractor, batch_size)
  fake = stats_from_clips((fake_clip(np.asarray(v), num_frames) for v in fake_videos), extractor, batch_size,
                          max_clips=num_videos)
  if cross_process:
    real, fake = frechet.merge_across_processes(real), frechet.merge_across_processes(fake)
  return FVDResult(frechet.frechet_distance_from_stats(real, fake, ddof), real, fake)


def fvd_from_arrays(real, fake, extractor: Callable, ddof: int = 1) -> float:
  """FVD between two in-memory batches, for a small FVD inside the train loop.

  Args:
    real: (N, T, H, W, 3) real clips (used as given: already 16-frame clips).
    fake: (M, T', H', W', 3) samples; the first ``min(T', 16)`` frames are used (>= 9 needed).
    extractor: e.g. an ``I3DFeatureExtractor`` built once and reused.
  """
  fake = np.asarray(fake)[:, :NUM_FRAMES]
  a = frechet.GaussianStats.from_features(np.asarray(extractor(np.asarray(real)), np.float64))
  b = frechet.GaussianStats.from_features(np.asarray(extractor(fake), np.float64))
  return frechet.frechet_distance_from_stats(a, b, ddof)

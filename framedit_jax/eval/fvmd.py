"""FVMD motion features: velocity/acceleration histograms of point tracks (Liu et al. 2024, arXiv 2407.16124).

Tracks come from a point tracker (PIPs++ in the paper: ``pips2.py``, run on videos by ``motion_extractor.py``;
its weights are user-supplied, see ``pips2_convert.WEIGHTS_HINT``). Given tracks (B, S, N, 2) of N = G*G grid
points over S = 16 frames, in pixels at 256x256, this module follows the official FrameDiT ``tools/metrics/models/motion_extractor.py`` numbers:

* velocity v_t = x_t - x_{t-1} for t >= 1 and v_0 = 0 (S entries per track);
* acceleration, two variants:
    ``'published'``: a_t = v_t - v_{t-1} for t >= 2, a_0 = a_1 = 0 (second difference of positions);
    ``'trajectory'``: the same differencing applied to the trajectories instead of the velocities,
    a_t = x_t - x_{t-1} for t >= 2, a_0 = a_1 = 0;
* the G x G grid and S frames are cut into 5x5-point, 4-frame cubes; each cube gets an 8-bin histogram of
  ``angle = atan2(v[...,0], v[...,1])``, bin ``floor((angle + pi) / (pi / 4))`` clipped to [0, 7], each vector
  weighted by ``ceil(clip(log2(min(|v|, 255) + 1), 0, 8)) / 8``;
* features = [velocity histograms, acceleration histograms] flattened: 2 * (S/4) * (G/5)^2 * 8 = 1024 for
  S=16, G=20; FVMD is the Fréchet distance of these features (``frechet.py``).
"""

from __future__ import annotations

import numpy as np

ANGLE_BINS = 8
MAGNITUDE_BINS = 256
CELL = 5
CUBE_FRAMES = 4


def velocity(tracks: np.ndarray) -> np.ndarray:
  """(B, S, N, 2) tracks -> (B, S, N, 2) velocities with a zero first frame."""
  d = tracks[:, 1:] - tracks[:, :-1]
  return np.concatenate([np.zeros_like(tracks[:, :1]), d], axis=1)


def _second_order(x: np.ndarray) -> np.ndarray:
  d = x[:, 2:] - x[:, 1:-1]
  return np.concatenate([np.zeros_like(x[:, :2]), d], axis=1)


def acceleration(tracks: np.ndarray, variant: str = 'published') -> np.ndarray:
  """(B, S, N, 2) tracks -> (B, S, N, 2) accelerations (see the module docstring for ``variant``)."""
  if variant == 'published':
    return _second_order(velocity(tracks))
  if variant == 'trajectory':
    return _second_order(tracks)
  raise ValueError(f"fvmd variant must be 'published' or 'trajectory', got {variant!r}.")


def cube_histograms(vectors: np.ndarray) -> np.ndarray:
  """(B, S, N, 2) vectors on a square grid (N = G*G) -> (B, S//4, G//5, G//5, 8) weighted angle histograms."""
  vectors = np.asarray(vectors, np.float64)
  b, s, n, _ = vectors.shape
  g = int(round(np.sqrt(n)))
  if g * g != n:
    raise ValueError(f'FVMD needs tracks on a square grid, got N={n} points.')
  ms, mh = s // CUBE_FRAMES, g // CELL
  v = vectors.reshape(b, s, g, g, 2)[:, :ms * CUBE_FRAMES, :mh * CELL, :mh * CELL]
  angle = np.arctan2(v[..., 0], v[..., 1])
  bins = np.clip(np.floor((angle + np.pi) / (2 * np.pi / ANGLE_BINS)), 0, ANGLE_BINS - 1).astype(np.int64)
  mag = np.clip(np.linalg.norm(v, axis=-1), 0, MAGNITUDE_BINS - 1)
  top = np.log2(MAGNITUDE_BINS)
  weight = np.ceil(np.clip(np.log2(mag + 1), 0, top)) / top
  onehot = np.eye(ANGLE_BINS)[bins] * weight[..., None]  # (B, S', G', G', 8)
  onehot = onehot.reshape(b, ms, CUBE_FRAMES, mh, CELL, mh, CELL, ANGLE_BINS)
  return onehot.sum(axis=(2, 4, 6))


def motion_features(tracks: np.ndarray, variant: str = 'published') -> np.ndarray:
  """(B, S, N, 2) tracks -> (B, F) FVMD features, F = 1024 for S=16 and a 20x20 grid."""
  tracks = np.asarray(tracks, np.float64)
  hv = cube_histograms(velocity(tracks)).reshape(tracks.shape[0], -1)
  ha = cube_histograms(acceleration(tracks, variant)).reshape(tracks.shape[0], -1)
  return np.concatenate([hv, ha], axis=1)


def grid_points(resolution: int = 256, num_points: int = 400) -> np.ndarray:
  """(N, 2) x, y query points on the official evenly spaced grid, 8 px from each border."""
  g = int(round(np.sqrt(num_points)))
  ys, xs = np.meshgrid(np.arange(g), np.arange(g), indexing='ij')
  scale = (resolution - 16) / (g - 1)
  return np.stack([8 + xs.reshape(-1) * scale, 8 + ys.reshape(-1) * scale], axis=-1)

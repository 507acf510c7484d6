"""Per-frame content distance ("FCD"): an FID-like score from hand-made per-frame features, for when no
InceptionV3 weights are available (FID proper is `fid.py` with pytorch-fid's weights, which cannot be
downloaded here).

Per frame (uint8 or [-1, 1], any size) the features are, 86-d in all:
  * the joint RGB histogram on a 4 x 4 x 4 grid (64 bins, fractions of pixels): the palette, i.e. background
    and shape colours and how much of the frame each covers;
  * the histogram of luminance gradient magnitudes (6 bins, edges 0.02, 0.05, 0.1, 0.2, 0.4 per pixel in
    [0, 1] units): sharp shape edges vs blur vs noise;
  * a 4 x 4 average-pooled luminance thumbnail (16): the coarse layout (gradient backgrounds, where shapes are).
On `moving_shapes` these describe a frame's content almost completely (uniform shapes on a plain or linear
background), and they ignore temporal order: shuffling the frames of a clip leaves them unchanged, so the score
separates "are the frames right" from the motion scores (FVD, FVMD, `motion_stats`).

FCD = Fréchet distance between Gaussian fits of the features of all frames of two clip sets (frames pooled
across clips, as the official frame-level FID), reported next to a real-vs-real baseline at the same N.
"""

from __future__ import annotations

import numpy as np

from framedit_jax.eval import frechet
from framedit_jax.eval.resize import to_unit

COLOR_LEVELS = 4
GRADIENT_EDGES = (0.02, 0.05, 0.1, 0.2, 0.4)
THUMB = 4
FEATURE_DIM = COLOR_LEVELS**3 + len(GRADIENT_EDGES) + 1 + THUMB * THUMB


def frame_features(frames) -> np.ndarray:
  """(..., H, W, 3) frames -> (prod(...), FEATURE_DIM) float64 features (see the module docstring)."""
  x = to_unit(frames)
  h, w = x.shape[-3:-1]
  x = x.reshape((-1, h, w, 3))
  n = x.shape[0]
  q = np.minimum((x * COLOR_LEVELS).astype(np.int64), COLOR_LEVELS - 1)
  code = (q[..., 0] * COLOR_LEVELS + q[..., 1]) * COLOR_LEVELS + q[..., 2]  # (n, h, w)
  color = np.zeros((n, COLOR_LEVELS**3))
  np.add.at(color, (np.repeat(np.arange(n), h * w), code.reshape(-1)), 1.0)
  color /= h * w
  lum = x @ np.array([0.299, 0.587, 0.114])
  gy, gx = np.gradient(lum, axis=(1, 2))
  mag = np.hypot(gx, gy)
  bins = np.searchsorted(np.asarray(GRADIENT_EDGES), mag.reshape(n, -1), side='right')
  grad = np.stack([np.bincount(b, minlength=len(GRADIENT_EDGES) + 1) for b in bins]) / (h * w)
  th, tw = h // THUMB, w // THUMB
  thumb = lum[:, :th * THUMB, :tw * THUMB].reshape(n, THUMB, th, THUMB, tw).mean(axis=(2, 4)).reshape(n, -1)
  return np.concatenate([color, grad, thumb], axis=1)


def content_frechet_distance(clips_a, clips_b, ddof: int = 1) -> float:
  """FCD between two sets of (N, T, H, W, 3) clips (all frames pooled)."""
  return frechet.frechet_distance_of_features(frame_features(clips_a), frame_features(clips_b), ddof)

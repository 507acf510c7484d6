"""A tracker-free motion statistic: block-matching motion histograms and their Fréchet distance ("MFD").

Why: FVD's I3D features are trained to classify actions and are dominated by per-frame appearance (the FVMD
paper, Liu et al. 2024, shows FVD barely reacts to broken motion). FVMD fixes this by histogramming point-track
velocities, but its tracker (PIPs++) needs weights that cannot be downloaded here. This module measures the same
quantity, the velocity field between consecutive frames, with classical block matching (exhaustive integer
search + parabolic sub-pixel refinement), which is exact for the rigid translations of uniform shapes in the
`moving_shapes` dataset and needs no learned network. When PIPs++ weights are available, FVMD
(`framedit_jax.eval.motion_extractor`) is the published metric; this statistic is the fallback and a sanity
check next to it.

Definition, for one clip x (T, H, W, 3) scaled to [0, 1]:

1. For every pair of consecutive frames (a, b) = (x_t, x_{t+1}) and also backwards (a, b) = (x_{t+1}, x_t)
   (the backward displacement is negated, so a shape entering a block and one leaving it are both seen), cut
   `a` into B x B blocks at stride B/2 (B = H/4: 8 px at 32x32) and compute for every integer shift s with
   |s_x|, |s_y| <= R (R = 3H/16: 6 px at 32x32, above the 4 px/frame top speed) the per-pixel mean squared
   difference e(s) = mean (b[p + s] - a[p])^2 over the block; shifts leaving the frame are not candidates.
   The displacement d = argmin e (ties to the smallest |s|), refined by a parabola through e on each axis.
2. A block counts only when it has structure: its spatial variance in `a` is >= `min_structure` (2e-3, i.e.
   a shape edge; plain or gently graded background has none, and its displacement would be ambiguous). A
   structured block is *static* when e(0) < `min_change` (1e-3: RMS change below 8/255), *moving* when it
   changed and the match explains it (e(d) <= `max_residual` * e(0), 0.25), else *incoherent* (it changed in a
   way no translation explains: flicker, noise, appearing/disappearing content).
3. Per-clip features (25-d): the fractions of static and incoherent structured blocks; the histogram of the
   speeds |d| of moving blocks (11 bins, edges 0.5, 1, ..., 4, 5, 6 px/frame), normalised by the number of
   structured blocks; the 8-bin histogram of their directions (speed >= 0.5), normalised by their count; the
   mean and std of their speeds; the mean and std over t of log10 of the frame-difference energy
   mean (x_{t+1} - x_t)^2. Speeds are expressed in px/frame of a 32-px-wide frame (scaled by 32 / W).
4. MFD (motion Fréchet distance) = Fréchet distance (`frechet.py`) between Gaussian fits of the per-clip
   features of two clip sets, exactly as FVD does with I3D logits; report it next to a real-vs-real baseline.

Scalars (`summary`): mean speed of moving blocks, fraction of moving / incoherent structured blocks and the
mean log frame-difference energy, per set; on `moving_shapes` the mean speed of real clips is close to the
ground-truth mean speed of the shapes (tests/test_motion_study.py checks both the closed forms and this).
"""

from __future__ import annotations

import numpy as np

from framedit_jax.eval import frechet
from framedit_jax.eval.resize import to_unit

SPEED_EDGES = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0)  # px/frame at width 32; 11 bins
DIRECTION_BINS = 8
FEATURE_NAMES = (['static', 'incoherent'] + [f'speed_bin{i}' for i in range(len(SPEED_EDGES) + 1)]
                 + [f'direction_bin{i}' for i in range(DIRECTION_BINS)]
                 + ['speed_mean', 'speed_std', 'log_diff_energy_mean', 'log_diff_energy_std'])
FEATURE_DIM = len(FEATURE_NAMES)


def _box_sum(x: np.ndarray, block: int, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
  """Sums of (..., H, W) over the block x block windows with top-left corners ys x xs -> (..., len(ys), len(xs))."""
  c = np.pad(np.cumsum(np.cumsum(x, axis=-2), axis=-1), [(0, 0)] * (x.ndim - 2) + [(1, 0), (1, 0)])
  y0, x0 = ys[:, None], xs[None, :]
  y1, x1 = y0 + block, x0 + block
  return c[..., y1, x1] - c[..., y0, x1] - c[..., y1, x0] + c[..., y0, x0]


def block_matching(a: np.ndarray, b: np.ndarray, block: int, radius: int, stride: int | None = None):
  """Displacements of the blocks of `a` into `b` (both (P, H, W, C) in [0, 1]).

  Returns:
    disp (P, By, Bx, 2) sub-pixel displacement (dx, dy); err0 (P, By, Bx) mean squared change at zero shift;
    err (P, By, Bx) at the best integer shift; structure (P, By, Bx) spatial variance of the block in `a`.
  """
  p, h, w, _ = a.shape
  stride = stride or max(1, block // 2)
  ys = np.arange(0, h - block + 1, stride)
  xs = np.arange(0, w - block + 1, stride)
  n = block * block * a.shape[-1]
  shifts = [(dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)]
  shifts.sort(key=lambda s: (s[0]**2 + s[1]**2, s))  # argmin's first hit = the smallest shift on ties
  errs = np.full((len(shifts), p, len(ys), len(xs)), np.inf)
  for i, (dy, dx) in enumerate(shifts):
    ok_y = (ys + dy >= 0) & (ys + dy + block <= h)
    ok_x = (xs + dx >= 0) & (xs + dx + block <= w)
    if not ok_y.any() or not ok_x.any():
      continue
    # shifted[p, y, x] = b[p, y + dy, x + dx] where defined (blocks that would leave the frame are masked)
    shifted = np.zeros_like(b)
    sy0, sy1 = max(0, -dy), min(h, h - dy)
    sx0, sx1 = max(0, -dx), min(w, w - dx)
    shifted[:, sy0:sy1, sx0:sx1] = b[:, sy0 + dy:sy1 + dy, sx0 + dx:sx1 + dx]
    e = _box_sum(((shifted - a)**2).sum(-1), block, ys, xs) / n
    errs[i] = np.where(ok_y[:, None] & ok_x[None, :], e, np.inf)
  best = np.argmin(errs, axis=0)
  err = np.take_along_axis(errs, best[None], 0)[0]
  index = {s: i for i, s in enumerate(shifts)}
  err0 = errs[index[(0, 0)]]
  sh = np.asarray(shifts)
  d = sh[best].astype(np.float64)  # (P, By, Bx, 2) as (dy, dx)
  side = 2 * radius + 1
  grid_to_idx = np.empty(side * side, np.int64)  # (dy + R) * side + (dx + R) -> index into `shifts`
  for s, i in index.items():
    grid_to_idx[(s[0] + radius) * side + s[1] + radius] = i
  for axis in (0, 1):  # parabola through the two neighbours of the best shift on each axis
    nbr = []
    for sign in (-1, 1):
      nb = sh[best].copy()
      nb[..., axis] += sign
      inside = np.all(np.abs(nb) <= radius, axis=-1)
      idx = grid_to_idx[np.where(inside, (nb[..., 0] + radius) * side + nb[..., 1] + radius, 0)]
      nbr.append(np.where(inside, np.take_along_axis(errs, idx[None], 0)[0], np.inf))
    minus, plus = nbr
    denom = minus - 2 * err + plus
    good = np.isfinite(minus) & np.isfinite(plus) & (denom > 1e-12)
    off = np.where(good, (minus - plus) / np.where(good, 2 * denom, 1.0), 0.0)
    d[..., axis] += np.clip(off, -0.5, 0.5)
  ac = np.moveaxis(a, -1, 1)  # (P, C, H, W): variance per channel, then averaged over channels
  s1 = _box_sum(ac, block, ys, xs) / (block * block)
  s2 = _box_sum(ac**2, block, ys, xs) / (block * block)
  structure = np.maximum(s2 - s1**2, 0.0).mean(axis=1)
  return d[..., ::-1], err0, err, structure


def clip_features(video, *, min_structure: float = 2e-3, min_change: float = 1e-3, max_residual: float = 0.25,
                  radius: int | None = None, speed_scale: float | None = None, return_details: bool = False):
  """(T, H, W, 3) clip (uint8 or [-1, 1]) -> (FEATURE_DIM,) float64 motion features (module docstring).

  radius: search radius in px (default 3H/16); speed_scale: factor from px/frame of the clip to the reported
  speeds (default 32 / W, px/frame of a 32-px-wide frame). With `return_details`, also a dict of the per-block
  arrays ('speed', 'moving', ...) for inspection.
  """
  x = to_unit(video)
  t, h, w, _ = x.shape
  if t < 2:
    raise ValueError(f'motion statistics need >= 2 frames, got shape {x.shape}.')
  block = max(2, h // 4)
  radius = max(1, (3 * h) // 16) if radius is None else int(radius)
  scale = 32.0 / w if speed_scale is None else float(speed_scale)
  parts = []
  for a, b, sign in ((x[:-1], x[1:], 1.0), (x[1:], x[:-1], -1.0)):
    disp, err0, err, structure = block_matching(a, b, block, radius)
    parts.append((sign * disp * scale, err0, err, structure))
  disp = np.concatenate([q[0] for q in parts])
  err0 = np.concatenate([q[1] for q in parts])
  err = np.concatenate([q[2] for q in parts])
  structure = np.concatenate([q[3] for q in parts])
  structured = structure >= min_structure
  changed = structured & (err0 >= min_change)
  moving = changed & (err <= max_residual * err0)
  incoherent = changed & ~moving
  static = structured & ~changed
  n_struct = int(structured.sum())
  speed = np.linalg.norm(disp, axis=-1)
  sp = speed[moving]
  feats = np.zeros(FEATURE_DIM)
  if n_struct == 0:
    feats[0] = 1.0  # nothing with structure: no visible motion
  else:
    feats[0] = static.sum() / n_struct
    feats[1] = incoherent.sum() / n_struct
    bins = np.searchsorted(np.asarray(SPEED_EDGES), sp, side='right')
    feats[2:2 + len(SPEED_EDGES) + 1] = np.bincount(bins, minlength=len(SPEED_EDGES) + 1) / n_struct
  o = 2 + len(SPEED_EDGES) + 1
  fast = moving & (speed >= 0.5)
  if fast.any():
    ang = np.arctan2(disp[..., 1][fast], disp[..., 0][fast])
    db = np.clip(np.floor((ang + np.pi) / (2 * np.pi / DIRECTION_BINS)), 0, DIRECTION_BINS - 1).astype(int)
    feats[o:o + DIRECTION_BINS] = np.bincount(db, minlength=DIRECTION_BINS) / fast.sum()
  o += DIRECTION_BINS
  if sp.size:
    feats[o], feats[o + 1] = sp.mean(), sp.std()
  energy = np.log10(((x[1:] - x[:-1])**2).mean(axis=(1, 2, 3)) + 1e-6)
  feats[o + 2], feats[o + 3] = energy.mean(), energy.std()
  if return_details:
    return feats, {'speed': speed, 'disp': disp, 'moving': moving, 'static': static, 'incoherent': incoherent,
                   'structured': structured}
  return feats


def features(videos, **kwargs) -> np.ndarray:
  """(N, T, H, W, 3) or an iterable of clips -> (N, FEATURE_DIM) float64."""
  return np.stack([clip_features(v, **kwargs) for v in videos])


def summary(feats: np.ndarray) -> dict[str, float]:
  """Set-level scalars from (N, FEATURE_DIM) features: mean speed (px/frame at width 32, over moving blocks,
  clips weighted by their number of moving blocks), moving / incoherent fractions, log10 difference energy."""
  feats = np.asarray(feats, np.float64)
  i = {n: k for k, n in enumerate(FEATURE_NAMES)}
  moving = 1.0 - feats[:, i['static']] - feats[:, i['incoherent']]
  weight = moving.sum()
  speed = float((feats[:, i['speed_mean']] * moving).sum() / weight) if weight > 0 else 0.0
  return {'mean_speed': speed, 'moving_fraction': float(moving.mean()),
          'incoherent_fraction': float(feats[:, i['incoherent']].mean()),
          'log_diff_energy': float(feats[:, i['log_diff_energy_mean']].mean())}


def motion_frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray, ddof: int = 1) -> float:
  """MFD: Fréchet distance between Gaussian fits of two (N, FEATURE_DIM) feature sets."""
  return frechet.frechet_distance_of_features(feats_a, feats_b, ddof)

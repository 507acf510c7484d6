"""PIPs++ point tracker (Zheng et al. 2023, arXiv 2307.15055) in JAX, as the official FrameDiT FVMD uses it.

Port of ``Pips.forward`` in the official ``tools/metrics/models/pips2.py`` (stride 8, latent 128, 4 correlation
levels of radius 3). Given query points on frame 0 it iterates ``iters`` times:

1. features of the tracked points: frame 0 (fixed), and the frames t-2 and t-4 at the current estimates
   (from the second iteration on; bilinear with border clamping, ``bilinear_sample2d``);
2. for each of the three, a 4-level pyramid of dot-product correlation maps with every frame (/ sqrt(128)),
   sampled on a 7x7 window around the current estimate (bilinear, zeros outside, ``grid_sample``);
3. the delta block maps [correlations, sin-cos(flow)] over time to coordinate updates (halved in the iterations
   ``> 3 iters // 4`` when ``beautify``); frame 0 stays locked to the query.

The iterations run in ``lax.scan``. Layers are in ``pips2_layers.py``, the converter in ``pips2_convert.py``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from framedit_jax.eval.pips2_layers import BasicEncoder
from framedit_jax.eval.pips2_layers import DeltaBlock

STRIDE = 8
LATENT_DIM = 128
CORR_LEVELS = 4
CORR_RADIUS = 3


def sample_clamped(fmap: jax.Array, xy: jax.Array) -> jax.Array:
  """(B, H, W, C) maps at (B, N, 2) pixel x, y -> (B, N, C); bilinear, indices clamped to the border."""
  _, h, w, _ = fmap.shape
  x, y = xy[..., 0], xy[..., 1]
  x0f, y0f = jnp.floor(x), jnp.floor(y)
  x0, y0 = x0f.astype(jnp.int32), y0f.astype(jnp.int32)
  out = 0.0
  for dy, wy in ((0, (y0f + 1) - y), (1, y - y0f)):
    for dx, wx in ((0, (x0f + 1) - x), (1, x - x0f)):
      yi, xi = jnp.clip(y0 + dy, 0, h - 1), jnp.clip(x0 + dx, 0, w - 1)
      vals = jax.vmap(lambda m, a, b: m[a, b])(fmap, yi, xi)  # (B, N, C)
      out = out + (wx * wy)[..., None] * vals
  return out


def sample_zero_padded(maps: jax.Array, xy: jax.Array) -> jax.Array:
  """(M, H, W) maps at (M, K, 2) pixel x, y -> (M, K); bilinear, zeros outside (``grid_sample``, align_corners)."""
  m, h, w = maps.shape
  flat = maps.reshape(m, h * w)
  x, y = xy[..., 0], xy[..., 1]
  x0f, y0f = jnp.floor(x), jnp.floor(y)
  x0, y0 = x0f.astype(jnp.int32), y0f.astype(jnp.int32)
  out = 0.0
  for dy, wy in ((0, (y0f + 1) - y), (1, y - y0f)):
    for dx, wx in ((0, (x0f + 1) - x), (1, x - x0f)):
      yi, xi = y0 + dy, x0 + dx
      inside = (yi >= 0) & (yi < h) & (xi >= 0) & (xi < w)
      idx = jnp.clip(yi, 0, h - 1) * w + jnp.clip(xi, 0, w - 1)
      out = out + jnp.where(inside, wx * wy * jnp.take_along_axis(flat, idx, axis=1), 0.0)
  return out


def fmap_pyramid(fmaps: jax.Array, levels: int = CORR_LEVELS) -> list[jax.Array]:
  """(B, S, H, W, C) -> ``levels`` maps, each 2x2 average-pooled (floor) from the previous."""
  pyramid = [fmaps]
  for _ in range(levels - 1):
    b, s, h, w, c = fmaps.shape
    h2, w2 = h // 2, w // 2
    fmaps = fmaps[:, :, :2 * h2, :2 * w2].reshape(b, s, h2, 2, w2, 2, c).mean(axis=(3, 5))
    pyramid.append(fmaps)
  return pyramid


def sample_corr(pyramid: list[jax.Array], targets: jax.Array, coords: jax.Array,
                radius: int = CORR_RADIUS) -> jax.Array:
  """Windowed correlation features (official ``CorrBlock.corr`` then ``.sample``).

  Args:
    pyramid: from ``fmap_pyramid``, level l of shape (B, S, H_l, W_l, C).
    targets: (B, S, N, C) point features correlated with frame s of the same time index.
    coords: (B, S, N, 2) current estimates in stride-8 units.
    radius: window radius r.

  Returns:
    (B, S, N, levels (2r+1)^2): level-major; within a level index a (2r+1) + b samples (x + a - r, y + b - r).
  """
  b, s, n, c = targets.shape
  d = jnp.arange(-radius, radius + 1, dtype=jnp.float32)
  offs = jnp.stack(jnp.meshgrid(d, d, indexing='ij'), axis=-1).reshape(-1, 2)  # (K, 2): (a - r, b - r)
  out = []
  for lvl, fm in enumerate(pyramid):
    _, _, h, w, _ = fm.shape
    corr = jnp.einsum('bsnc,bshwc->bsnhw', targets, fm, precision=jax.lax.Precision.HIGHEST)
    corr = corr / jnp.sqrt(jnp.float32(c))
    pts = coords.reshape(b * s * n, 1, 2) / jnp.float32(2 ** lvl) + offs[None]
    out.append(sample_zero_padded(corr.reshape(b * s * n, h, w), pts).reshape(b, s, n, -1))
  return jnp.concatenate(out, axis=-1)


def track(params: dict, trajs_e0, rgbs, iters: int = 8, beautify: bool = True) -> jax.Array:
  """Tracks points through a clip with PIPs++.

  Args:
    params: ``{'fnet': ..., 'delta_block': ...}`` Flax params (``pips2_convert.load_pips2``).
    trajs_e0: (B, S, N, 2) initial trajectories in pixels (x, y); frame 0 holds the queries (the official
      FVMD passes the query grid repeated over S).
    rgbs: (B, S, H, W, 3) frames in [-1, 1], H and W multiples of 8 (>= 128 so that the coarsest
      correlation level is at least 2 px wide).
    iters: refinement iterations (8 in the official FVMD).
    beautify: halve the updates of iterations ``> 3 iters // 4`` (True in the official FVMD).

  Returns:
    (iters + 1, B, S, N, 2) pixel trajectories after each iteration (frame 0 unlocked in the first ``iters``,
    as the official list) and the final locked one; FVMD uses ``[-1]``.

  Raises:
    ValueError: shapes that do not match, H or W not a multiple of 8 or below 128, S < 2, iters < 1.
  """
  ts, rs = np.shape(trajs_e0), np.shape(rgbs)
  if len(ts) != 4 or len(rs) != 5 or rs[:2] != ts[:2] or rs[-1] != 3 or ts[-1] != 2:
    raise ValueError(f'PIPs++ needs trajs_e0 (B, S, N, 2) and rgbs (B, S, H, W, 3); got {np.shape(trajs_e0)} and '
                     f'{np.shape(rgbs)}.')
  s, h, w = rs[1:4]
  if h % STRIDE or w % STRIDE or min(h, w) < 16 * STRIDE or s < 2 or iters < 1:
    raise ValueError(f'PIPs++ needs H, W multiples of {STRIDE} and >= {16 * STRIDE}, S >= 2, iters >= 1; got '
                     f'H={h}, W={w}, S={s}, iters={iters}.')
  return _track(params, jnp.asarray(trajs_e0, jnp.float32), jnp.asarray(rgbs, jnp.float32), iters, beautify)


@functools.partial(jax.jit, static_argnums=(3, 4))
def _track(params, trajs_e0, rgbs, iters, beautify):
  b, s, n, _ = trajs_e0.shape
  _, _, h, w, _ = rgbs.shape
  fmaps = BasicEncoder(LATENT_DIM, STRIDE).apply({'params': params['fnet']}, rgbs.reshape(b * s, h, w, 3))
  fmaps = fmaps.reshape(b, s, h // STRIDE, w // STRIDE, LATENT_DIM)
  pyramid = fmap_pyramid(fmaps)
  coords0 = trajs_e0.astype(jnp.float32) / jnp.float32(STRIDE)
  feat1 = sample_clamped(fmaps[:, 0], coords0[:, 0])  # (B, N, C)
  feats1 = jnp.broadcast_to(feat1[:, None], (b, s, n, LATENT_DIM))
  delta_block = DeltaBlock(LATENT_DIM)

  def feats_at(coords, lag):
    inds = jnp.clip(jnp.arange(s) - lag, 0, None)
    fm = fmaps[:, inds].reshape(b * s, h // STRIDE, w // STRIDE, LATENT_DIM)
    return sample_clamped(fm, coords[:, inds].reshape(b * s, n, 2)).reshape(b, s, n, LATENT_DIM)

  def step(coords, itr):
    feats2 = jnp.where(itr >= 1, feats_at(coords, 2), feats1)
    feats4 = jnp.where(itr >= 1, feats_at(coords, 4), feats1)
    fc = [sample_corr(pyramid, f, coords) for f in (feats1, feats2, feats4)]  # (B, S, N, LRR) each
    fc = jnp.concatenate([x.transpose(0, 2, 1, 3).reshape(b * n, s, -1) for x in fc], axis=-1)
    flows = (coords[:, 1:] - coords[:, :-1]).transpose(0, 2, 1, 3).reshape(b * n, s - 1, 2)
    flows = jnp.concatenate([flows, flows[:, -1:]], axis=1)
    delta = delta_block.apply({'params': params['delta_block']}, fc, flows)  # (B N, S, 2)
    if beautify:
      delta = jnp.where(itr > 3 * iters // 4, 0.5, 1.0) * delta
    coords = coords + delta.reshape(b, n, s, 2).transpose(0, 2, 1, 3)
    pred = coords * STRIDE
    return coords.at[:, 0].set(coords0[:, 0]), pred

  coords, preds = jax.lax.scan(step, coords0, jnp.arange(iters))
  return jnp.concatenate([preds, (coords * STRIDE)[None]], axis=0)

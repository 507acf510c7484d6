"""Frame resizing for the FVMD / LPIPS protocols (official FrameDiT ``tools/utils/dataset.py`` + ``F.interpolate``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def resize_bilinear(x: jax.Array, out_h: int, out_w: int) -> jax.Array:
  """(B, H, W, C) -> (B, out_h, out_w, C), torch ``F.interpolate(mode='bilinear', align_corners=False)``.

  Half-pixel centres, source index clamped at 0, no antialiasing (as torch's default).
  """

  def along(x, axis, n_out):
    n_in = x.shape[axis]
    if n_in == n_out:
      return x
    src = (jnp.arange(n_out, dtype=jnp.float32) + 0.5) * jnp.float32(n_in / n_out) - 0.5
    src = jnp.maximum(src, 0.0)
    i0 = jnp.minimum(jnp.floor(src).astype(jnp.int32), n_in - 1)
    i1 = jnp.minimum(i0 + 1, n_in - 1)
    shape = [1] * x.ndim
    shape[axis] = n_out
    lam = (src - i0.astype(jnp.float32)).reshape(shape)
    return jnp.take(x, i0, axis=axis) * (1 - lam) + jnp.take(x, i1, axis=axis) * lam

  return along(along(x, 1, out_h), 2, out_w)


def to_0_255(frames) -> np.ndarray:
  """uint8 frames as float32 [0, 255]; float frames are taken to be in [-1, 1] (``framedit_jax.data``) and mapped
  to [0, 255] (the convention of ``i3d.preprocess``)."""
  frames = np.asarray(frames)
  if frames.dtype == np.uint8:
    return frames.astype(np.float32)
  return (frames.astype(np.float32) + 1.0) * 127.5


def to_unit(frames) -> np.ndarray:
  """uint8 frames [0, 255] or float frames in [-1, 1] (clipped) -> float64 in [0, 1]."""
  frames = np.asarray(frames)
  if frames.dtype == np.uint8:
    return frames.astype(np.float64) / 255.0
  return (np.clip(frames.astype(np.float64), -1.0, 1.0) + 1.0) / 2.0


def square_frames(frames, resolution: int) -> np.ndarray:
  """(T, H, W, 3) uint8 (or float in [-1, 1]) -> (T, R, R, 3) float32 in [0, 255]: short side to R, centre crop.

  As the official evaluation loader (torchvision ``resize(size=R, BILINEAR)`` of the short edge, then a
  centre crop). Resizing here is bilinear with antialiasing when shrinking (``jax.image.resize``), the
  analogue of PIL's bilinear filter; frames already R x R pass unchanged.
  """
  frames = to_0_255(frames)
  t, h, w, c = frames.shape
  if (h, w) == (resolution, resolution):
    return frames
  scale = resolution / min(h, w)
  nh, nw = max(resolution, int(round(h * scale))), max(resolution, int(round(w * scale)))
  out = jax.image.resize(jnp.asarray(frames), (t, nh, nw, c), 'linear', antialias=True)
  top, left = (nh - resolution) // 2, (nw - resolution) // 2
  return np.asarray(out[:, top:top + resolution, left:left + resolution])

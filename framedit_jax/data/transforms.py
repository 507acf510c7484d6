"""Spatial clip transforms in NumPy, channels last: (T, H, W, C).

They reproduce the official torch transforms (official datasets/video_transforms.py):
  * `center_crop_short_side` = center_crop_using_short_edge,
  * `resize_bilinear` = F.interpolate(mode='bilinear', align_corners=False) without antialiasing,
  * `center_crop` = center_crop (offsets `int(round((h - th) / 2))`),
and the per-dataset recipes of official datasets/__init__.py `get_dataset` (`spatial_transform`).
"""

import numpy as np

# Per-dataset recipe: 'crop_resize' = center-crop the short side to a square, then resize (taichi, sky);
# 'squash' = resize straight to (size, size) ignoring the aspect ratio, then center-crop (a no-op): what the
# official UCFCenterCropVideo does for ucf101/ffs (its `resize_scale` ignores H, W);
# 'short_side_crop' = resize the short side to `size` keeping the aspect ratio, then center-crop.
SPATIAL_MODES = ('crop_resize', 'squash', 'short_side_crop')


def center_crop_short_side(clip):
  """(T, H, W, C) -> (T, S, S, C), S = min(H, W), centred (official center_crop_using_short_edge)."""
  h, w = clip.shape[1:3]
  if h < w:
    j = int(round((w - h) / 2.0))
    return clip[:, :, j:j + h]
  i = int(round((h - w) / 2.0))
  return clip[:, i:i + w]


def center_crop(clip, th, tw):
  """(T, H, W, C) -> (T, th, tw, C) centred; raises ValueError when the clip is smaller."""
  h, w = clip.shape[1:3]
  if h < th or w < tw:
    raise ValueError(f'center_crop: clip {h}x{w} is smaller than the crop {th}x{tw}')
  i = int(round((h - th) / 2.0))
  j = int(round((w - tw) / 2.0))
  return clip[:, i:i + th, j:j + tw]


def _src_index(out_size, in_size):
  """Half-pixel source coordinates of torch bilinear, align_corners=False: (i0, i1, frac)."""
  scale = in_size / out_size
  real = (np.arange(out_size, dtype=np.float64) + 0.5) * scale - 0.5
  real = np.maximum(real, 0.0)
  i0 = np.floor(real).astype(np.int64)
  i0 = np.minimum(i0, in_size - 1)
  i1 = np.minimum(i0 + 1, in_size - 1)
  frac = (real - i0).astype(np.float32)
  return i0, i1, frac


def resize_bilinear(clip, out_h, out_w):
  """(T, H, W, C) uint8/float -> (T, out_h, out_w, C) float32; torch bilinear, align_corners=False, no AA.

  Same-size resizing is the identity (returns a float32 copy).
  """
  clip = np.asarray(clip)
  h, w = clip.shape[1:3]
  if (h, w) == (out_h, out_w):
    return clip.astype(np.float32)
  y0, y1, fy = _src_index(out_h, h)
  x0, x1, fx = _src_index(out_w, w)
  rows0 = clip[:, y0].astype(np.float32)
  rows1 = clip[:, y1].astype(np.float32)
  fy = fy[None, :, None, None]
  rows = rows0 + (rows1 - rows0) * fy  # (T, out_h, W, C)
  left = rows[:, :, x0]
  right = rows[:, :, x1]
  return left + (right - left) * fx[None, None, :, None]


def spatial_transform(clip, size, mode, flip):
  """Crop/resize/flip a uint8 clip and scale it to [-1, 1].

  Args:
    clip: (T, H, W, 3) uint8.
    size: output side in pixels (square output).
    mode: one of SPATIAL_MODES.
    flip: mirror horizontally (one decision for the whole clip).
  Returns:
    (T, size, size, 3) float32 in [-1, 1].
  """
  if flip:
    clip = clip[:, :, ::-1]  # flipping before resizing is exact: bilinear resizing is mirror-symmetric
  if mode == 'crop_resize':
    clip = center_crop_short_side(clip)
    out_hw = (size, size)
  elif mode == 'squash':
    out_hw = (size, size)
  elif mode == 'short_side_crop':
    h, w = clip.shape[1:3]
    if h <= w:
      out_hw = (size, max(size, int(round(w * size / h))))
    else:
      out_hw = (max(size, int(round(h * size / w))), size)
  else:
    raise ValueError(f'data.spatial_mode={mode!r}: use one of {SPATIAL_MODES}')
  if clip.shape[1:3] == out_hw:
    out = np.empty(clip.shape, np.float32)
    np.multiply(clip, np.float32(1 / 127.5), out=out, dtype=np.float32)
  else:
    out = resize_bilinear(clip, *out_hw)
    out *= np.float32(1 / 127.5)
  out -= np.float32(1.0)
  if mode == 'short_side_crop':
    out = np.ascontiguousarray(center_crop(out, size, size))
  return out

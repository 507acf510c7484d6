"""Reconstruction metrics of video autoencoders: PSNR, SSIM (scikit-image) and optional LPIPS, per frame.

Videos are `(B, T, H, W, 3)` float in [-1, 1]; they are mapped to [0, 1] (clipped) before scoring, so PSNR is
10 log10(1 / MSE) with data range 1 and SSIM is scikit-image's `structural_similarity` (Wang et al. 2004,
7x7 uniform window, `data_range=1`, `channel_axis=-1`). Scores are averaged over all frames of all clips, as
VideoDiT Table 1 reports them (PSNR / SSIM / LPIPS).
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np


def _to_unit(video) -> np.ndarray:
  return np.clip((np.asarray(video, np.float64) + 1.0) / 2.0, 0.0, 1.0)


def _check(x, y):
  if x.shape != y.shape or x.ndim != 5 or x.shape[-1] != 3:
    raise ValueError(f'reconstruction metrics need two (B, T, H, W, 3) videos of one shape, got {x.shape} and '
                     f'{y.shape}.')


def psnr_per_frame(x, y) -> np.ndarray:
  """PSNR in dB of every frame, `(B, T)`; inf for identical frames. x, y: `(B, T, H, W, 3)` in [-1, 1]."""
  x, y = np.asarray(x), np.asarray(y)
  _check(x, y)
  mse = np.mean(np.square(_to_unit(x) - _to_unit(y)), axis=(2, 3, 4))
  with np.errstate(divide='ignore'):
    return 10.0 * np.log10(1.0 / mse)


def ssim_per_frame(x, y) -> np.ndarray:
  """SSIM of every frame, `(B, T)` (scikit-image, data_range 1, channels last). Frames need H, W >= 7."""
  from skimage.metrics import structural_similarity  # pylint: disable=g-import-not-at-top
  x, y = np.asarray(x), np.asarray(y)
  _check(x, y)
  if min(x.shape[2:4]) < 7:
    raise ValueError(f'SSIM needs frames of at least 7x7 pixels, got {x.shape[2:4]}.')
  xu, yu = _to_unit(x), _to_unit(y)
  out = np.empty(x.shape[:2])
  for b in range(x.shape[0]):
    for t in range(x.shape[1]):
      out[b, t] = structural_similarity(xu[b, t], yu[b, t], data_range=1.0, channel_axis=-1)
  return out


def reconstruction_metrics(x, y, lpips_fn: Optional[Callable] = None) -> dict:
  """Mean PSNR (dB), SSIM and, when `lpips_fn(a, b) -> (N,)` on `(N, H, W, 3)` [-1, 1] images is given, LPIPS.

  Returns {'psnr': float, 'ssim': float, 'lpips': float or None, 'num_frames': int}. Identical frames (inf dB)
  are left out of the PSNR mean; PSNR is inf only if every frame is identical.
  """
  p = psnr_per_frame(x, y)
  finite = p[np.isfinite(p)]
  out = dict(psnr=float(finite.mean()) if finite.size else float('inf'), ssim=float(ssim_per_frame(x, y).mean()),
             lpips=None, num_frames=int(p.size))
  if lpips_fn is not None:
    x, y = np.asarray(x, np.float32), np.asarray(y, np.float32)
    flat = lambda v: v.reshape((-1,) + v.shape[2:])
    out['lpips'] = float(np.mean(np.asarray(lpips_fn(flat(x), flat(y)))))
  return out


def compare_codecs(codecs: dict, clips, lpips_fn: Optional[Callable] = None, batch_size: int = 4) -> dict:
  """Scores `decode_video(encode_video(clips, sample=False))` of every codec on the same clips.

  Args:
    codecs: name -> object with `encode_video(video, sample=False)` / `decode_video(z)` (VideoVAE, DPVideoVAE).
    clips: `(N, T, H, W, 3)` in [-1, 1].
    lpips_fn: optional LPIPS callable (see `reconstruction_metrics`).
    batch_size: clips per encode/decode call.
  Returns:
    name -> metrics dict of `reconstruction_metrics`, plus 'latent_shape' (one clip's latent, a tuple).
  """
  clips = np.asarray(clips, np.float32)
  results = {}
  for name, codec in codecs.items():
    recon, shape = [], None
    for i in range(0, len(clips), batch_size):
      z = codec.encode_video(clips[i:i + batch_size], sample=False)
      shape = tuple(int(s) for s in z.shape[1:])
      recon.append(np.asarray(codec.decode_video(z), np.float32))
    results[name] = dict(reconstruction_metrics(clips, np.concatenate(recon), lpips_fn), latent_shape=shape)
  return results

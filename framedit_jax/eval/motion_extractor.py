"""FVMD features of videos: PIPs++ tracks of the official point grid -> motion histograms (``fvmd.py``).

Follows the official FrameDiT ``tools/metrics/models/motion_extractor.py`` (``MotionExtractor``): frames in
[-1, 1] are resized to ``resolution`` x ``resolution`` (bilinear, half-pixel, no antialiasing: torch
``F.interpolate(align_corners=False)``; the official loader has already made clips square at that
resolution, see ``resize.square_frames``), cut into 16-frame segments starting every 15 frames (each segment is
one sample), tracked from the ``num_points`` grid of ``fvmd.grid_points`` with 8 iterations (``beautify``),
and turned into 1024 velocity + acceleration histogram features (S=16, 20x20 grid). FVMD is the Fréchet
distance of these features between two sets of videos.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from framedit_jax.eval import fvmd
from framedit_jax.eval import pips2
from framedit_jax.eval import pips2_convert
from framedit_jax.eval.resize import resize_bilinear

SEGMENT_LENGTH = 16


class MotionFeatureExtractor:
  """(B, T, H, W, 3) videos with values in [0, 255] (uint8 or float) -> (B * segments, F) FVMD features (float64), T >= 16.

  Args:
    weights_path: PIPs++ checkpoint (``pips2_weights.pth``, see ``pips2_convert.WEIGHTS_HINT``), or
    params: already converted params (tests).
    resolution: tracking resolution (256 in the official FVMD); multiple of 8, >= 128.
    num_points: square number of grid points (400: F = 1024).
    num_iters: PIPs++ iterations (8).
    variant: acceleration variant of ``fvmd.acceleration`` ('published' = the official code).

  Raises:
    FileNotFoundError: no weights (the message gives their URL).
    ValueError: bad resolution / num_points, or clips shorter than 16 frames.
  """

  def __init__(self, weights_path: str | None = None, *, params: dict | None = None, resolution: int = 256,
               num_points: int = 400, num_iters: int = 8, variant: str = 'published'):
    if resolution % 8 or resolution < 128:
      raise ValueError(f'FVMD resolution must be a multiple of 8 and >= 128, got {resolution}.')
    g = int(round(np.sqrt(num_points)))
    if g * g != num_points or g < fvmd.CELL:
      raise ValueError(f'FVMD num_points must be a square >= 25 (official: 400), got {num_points}.')
    self.params = params if params is not None else pips2_convert.load_pips2(weights_path)
    self.resolution, self.num_points, self.num_iters, self.variant = resolution, num_points, num_iters, variant
    self.queries = jnp.asarray(fvmd.grid_points(resolution, num_points), jnp.float32)  # (N, 2)

  def tracks(self, video) -> np.ndarray:
    """(T, H, W, 3) in [0, 255] -> (segments, 16, N, 2) pixel tracks at ``resolution`` (official segment starts)."""
    video = np.asarray(video)
    t = video.shape[0]
    if video.ndim != 4 or t < SEGMENT_LENGTH:
      raise ValueError(f'FVMD needs (T >= {SEGMENT_LENGTH}, H, W, 3) clips, got shape {video.shape}.')
    x = jnp.asarray(video, jnp.float32) / 255.0 * 2.0 - 1.0
    x = resize_bilinear(x, self.resolution, self.resolution)
    starts = range(0, t - SEGMENT_LENGTH + 1, SEGMENT_LENGTH - 1)
    segs = jnp.stack([x[s:s + SEGMENT_LENGTH] for s in starts])  # (G, 16, R, R, 3)
    q = jnp.broadcast_to(self.queries, (len(starts), SEGMENT_LENGTH) + self.queries.shape)
    return np.asarray(pips2.track(self.params, q, segs, iters=self.num_iters, beautify=True)[-1])

  def __call__(self, videos) -> np.ndarray:
    tracks = np.concatenate([self.tracks(v) for v in np.asarray(videos)])
    return fvmd.motion_features(tracks, self.variant)

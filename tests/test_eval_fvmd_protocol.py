"""FVMD plumbing in evaluate_with_baseline (halves, 16-frame cut, square clips) with a closed-form motion extractor."""

import numpy as np
import pytest
import torch

from framedit_jax.eval import evaluate
from framedit_jax.eval import frechet
from framedit_jax.eval import resize


def _i3d(videos):  # cheap stand-in for I3D (only FVD needs it)
  v = np.asarray(videos, np.float64)
  return np.stack([v.mean(axis=(1, 2, 3, 4)), v[:, 0, 0, 0, 0], v[:, -1, -1, -1, 1]], axis=1)


def _motion(videos):  # stand-in for MotionFeatureExtractor: per clip, 4 exact statistics of its 16 frames
  v = np.asarray(videos, np.float64)
  assert v.shape[1:] == (16, 8, 8, 3)  # first 16 frames, made 8x8 square
  return np.stack([v[:, :, 0, 0, 0].mean(1), v[:, 15].mean((1, 2, 3)), v[:, :, :, :, 2].std((1, 2, 3)),
                   v[:, 3, 4, 4, 1]], axis=1)


def _clips(n, seed, shape=(20, 8, 12, 3)):
  rng = np.random.default_rng(seed)
  return [rng.integers(0, 256, size=shape).astype(np.uint8) for _ in range(n)]


def test_fvmd_halves_and_clip_preparation():
  fakes, reals = _clips(3, 0), _clips(7, 1)
  res = evaluate.evaluate_with_baseline(iter(fakes), iter(reals), _i3d, num_videos=3, batch_size=2,
                                        motion_extractor=_motion, motion_resolution=8)
  assert res['num_videos'] == 3

  def feats(clips):  # reference: 16 frames, centre 8x8 square (12 wide -> crop 2 columns each side)
    return _motion(np.stack([c[:16, :, 2:10].astype(np.float64) for c in clips]))

  def fd(a, b):
    return frechet.frechet_distance_from_stats(frechet.GaussianStats.from_features(a),
                                               frechet.GaussianStats.from_features(b), 1)

  np.testing.assert_allclose(res['fvmd'], fd(feats(fakes), feats(reals[:3])), rtol=1e-9)
  np.testing.assert_allclose(res['fvmd_real_vs_real'], fd(feats(reals[:3]), feats(reals[3:6])), rtol=1e-9)
  assert res['fvmd'] > 0
  # real clips as framedit_jax.data gives them (float in [-1, 1]) score the same
  as_float = [c.astype(np.float32) / np.float32(127.5) - 1.0 for c in reals]
  res_f = evaluate.evaluate_with_baseline(iter(fakes), iter(as_float), _i3d, num_videos=3, batch_size=2,
                                          motion_extractor=_motion, motion_resolution=8)
  np.testing.assert_allclose(res_f['fvmd'], res['fvmd'], rtol=1e-5)


def test_fvmd_needs_16_frames():
  with pytest.raises(ValueError, match='FVMD needs 16-frame clips'):
    evaluate.evaluate_with_baseline(iter(_clips(2, 0)), iter(_clips(4, 1)), _i3d, num_frames=8,
                                    motion_extractor=_motion, motion_resolution=8)


def test_square_frames_resizes_short_side_then_crops():
  x = np.arange(2 * 4 * 6 * 3, dtype=np.uint8).reshape(2, 4, 6, 3)
  out = resize.square_frames(x, 8)  # short side 4 -> 8 (width 12), centre crop columns 2..10; upsampling = torch
  assert out.shape == (2, 8, 8, 3)
  full = torch.nn.functional.interpolate(torch.from_numpy(x.astype(np.float32)).permute(0, 3, 1, 2), size=(8, 12),
                                         mode='bilinear', align_corners=False).permute(0, 2, 3, 1).numpy()
  np.testing.assert_allclose(out, full[:, :, 2:10], atol=1e-4)

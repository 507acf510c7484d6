"""FVMD motion features on synthetic tracks with closed-form velocities and accelerations."""

import numpy as np
import pytest

from framedit_jax.eval import frechet
from framedit_jax.eval import fvmd


def _q(m):  # official magnitude quantisation
  return np.ceil(np.clip(np.log2(min(m, 255) + 1), 0, 8)) / 8


def _bin(vx, vy):
  return int(np.clip(np.floor((np.arctan2(vx, vy) + np.pi) / (np.pi / 4)), 0, 7))


def _tracks(fn, s=16):
  base = fvmd.grid_points()  # (400, 2)
  t = np.arange(s, dtype=np.float64)[:, None, None]
  return (base[None] + fn(t))[None]  # (1, S, 400, 2)


def test_constant_velocity_histograms():
  vx, vy = 3.0, -4.0  # |v| = 5
  tr = _tracks(lambda t: t * np.array([vx, vy]))
  v = fvmd.velocity(tr)
  np.testing.assert_allclose(v[:, 1:], np.broadcast_to([vx, vy], v[:, 1:].shape))
  np.testing.assert_allclose(fvmd.acceleration(tr), 0, atol=1e-12)
  h = fvmd.cube_histograms(v)  # (1, 4, 4, 4, 8)
  assert h.shape == (1, 4, 4, 4, 8)
  want = np.zeros(8)
  want[_bin(vx, vy)] = 4 * 25 * _q(5.0)
  np.testing.assert_allclose(h[0, 1:], np.broadcast_to(want, h[0, 1:].shape))
  want0 = want * 3 / 4  # the first cube holds the zero-padded frame 0 (weight 0)
  np.testing.assert_allclose(h[0, 0], np.broadcast_to(want0, h[0, 0].shape))


def test_constant_acceleration_both_variants():
  a = np.array([0.0, 2.2])  # avoids |v| + 1 landing on a power of two (a ceil boundary)
  tr = _tracks(lambda t: 0.5 * t**2 * a)
  acc = fvmd.acceleration(tr, 'published')
  np.testing.assert_allclose(acc[:, 2:], np.broadcast_to(a, acc[:, 2:].shape), atol=1e-9)
  np.testing.assert_allclose(acc[:, :2], 0)
  traj = fvmd.acceleration(tr, 'trajectory')  # = first difference of positions: a * (t - 1/2)
  t = np.arange(2, 16)[:, None]
  np.testing.assert_allclose(traj[0, 2:, 0], a * (t - 0.5), atol=1e-9)
  f = fvmd.motion_features(tr)
  assert f.shape == (1, 1024)
  # velocity half: |v_t| = 1.1 (2t - 1) (t >= 1), all in the +y bin; closed-form sum over all frames and points.
  want_v = 25 * 16 * sum(_q(1.1 * (2.0 * t - 1)) for t in range(1, 16))
  np.testing.assert_allclose(f[0, :512].sum(), want_v)
  want_a = 400 * 14 * _q(2.2)
  np.testing.assert_allclose(f[0, 512:].sum(), want_a)
  with pytest.raises(ValueError, match='variant'):
    fvmd.acceleration(tr, 'other')


def test_histograms_match_loop_reference():
  rng = np.random.default_rng(0)
  vec = rng.normal(scale=20, size=(2, 8, 100, 2))
  h = fvmd.cube_histograms(vec)
  v = vec.reshape(2, 8, 10, 10, 2)
  ref = np.zeros((2, 2, 2, 2, 8))
  for b in range(2):
    for s in range(8):
      for i in range(10):
        for j in range(10):
          x = v[b, s, i, j]
          ref[b, s // 4, i // 5, j // 5, _bin(x[0], x[1])] += _q(np.hypot(*x))
  np.testing.assert_allclose(h, ref, rtol=1e-12)


def test_fvmd_zero_for_same_motion_and_positive_otherwise():
  rng = np.random.default_rng(1)
  slow = np.concatenate([_tracks(lambda t, v=v: t * v) for v in rng.normal(size=(6, 2))])
  fast = np.concatenate([_tracks(lambda t, v=v: 0.5 * t**2 * v) for v in rng.normal(scale=3, size=(6, 2))])
  fs, ff = fvmd.motion_features(slow), fvmd.motion_features(fast)
  # Columns that are 0 in both sets add exactly 0 to the distance; drop them to keep eigh small.
  keep = np.any(fs != 0, axis=0) | np.any(ff != 0, axis=0)
  fs, ff = fs[:, keep], ff[:, keep]
  a, b = frechet.GaussianStats.from_features(fs), frechet.GaussianStats.from_features(ff)
  assert frechet.frechet_distance_from_stats(a, a) < 1e-6
  assert frechet.frechet_distance_from_stats(a, b) > 1.0

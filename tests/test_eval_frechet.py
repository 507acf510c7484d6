"""Fréchet distance and streaming statistics against closed forms and np.cov."""

import numpy as np
import pytest

from framedit_jax.eval import frechet


def _rotation(rng, d):
  q, r = np.linalg.qr(rng.normal(size=(d, d)))
  return q * np.sign(np.diag(r))


def test_1d_closed_form():
  # W2^2 between N(m1, s1^2) and N(m2, s2^2) is (m1 - m2)^2 + (s1 - s2)^2.
  d = frechet.frechet_distance([1.5], [[4.0]], [-0.5], [[0.25]])
  np.testing.assert_allclose(d, 2.0**2 + (2.0 - 0.5)**2, rtol=1e-12)


def test_diagonal_closed_form():
  rng = np.random.default_rng(0)
  a, b = rng.uniform(0.1, 3, 7), rng.uniform(0.1, 3, 7)
  mu1, mu2 = rng.normal(size=7), rng.normal(size=7)
  want = np.sum((mu1 - mu2)**2) + np.sum((np.sqrt(a) - np.sqrt(b))**2)
  got = frechet.frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
  np.testing.assert_allclose(got, want, rtol=1e-10)


def test_rotated_vs_isotropic_closed_form():
  # S1 = R diag(a) R^T, S2 = c I: d = sum_i (sqrt(a_i) - sqrt(c))^2 for any rotation R.
  rng = np.random.default_rng(1)
  r = _rotation(rng, 9)
  a, c = rng.uniform(0.05, 5, 9), 1.7
  s1 = r @ np.diag(a) @ r.T
  got = frechet.frechet_distance(np.zeros(9), s1, np.zeros(9), c * np.eye(9))
  np.testing.assert_allclose(got, np.sum((np.sqrt(a) - np.sqrt(c))**2), rtol=1e-10)


def test_non_commuting_2x2_closed_form():
  # For 2x2 PSD, tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)); eig(S1^1/2 S2 S1^1/2) = eig(S1 S2).
  s1 = np.array([[2.0, 0.7], [0.7, 1.0]])
  s2 = np.array([[0.5, -0.3], [-0.3, 3.0]])
  tr_sqrt = np.sqrt(np.trace(s1 @ s2) + 2 * np.sqrt(np.linalg.det(s1) * np.linalg.det(s2)))
  mu1, mu2 = np.array([0.3, -1.0]), np.array([1.0, 2.0])
  want = np.sum((mu1 - mu2)**2) + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt
  np.testing.assert_allclose(frechet.frechet_distance(mu1, s1, mu2, s2), want, rtol=1e-12)


def test_symmetry_and_zero_for_identical():
  rng = np.random.default_rng(2)
  x, y = rng.normal(size=(50, 20)), rng.normal(size=(40, 20)) * 1.3 + 0.2
  a, b = frechet.GaussianStats.from_features(x), frechet.GaussianStats.from_features(y)
  dab, dba = frechet.frechet_distance_from_stats(a, b), frechet.frechet_distance_from_stats(b, a)
  assert dab > 0.1
  np.testing.assert_allclose(dab, dba, rtol=1e-9)
  # Rank-deficient covariance (N < D) too: identical statistics give 0 up to round-off.
  assert frechet.frechet_distance_from_stats(a, a) < 1e-9
  small = frechet.GaussianStats.from_features(x[:8])
  assert frechet.frechet_distance_from_stats(small, small) < 1e-9


@pytest.mark.parametrize('ddof', [0, 1])
def test_streaming_and_sharded_equal_np_cov(ddof):
  rng = np.random.default_rng(3)
  # Large common offset: the naive sum-of-squares form would lose ~8 digits here.
  x = rng.normal(size=(301, 12)) @ rng.normal(size=(12, 12)) + 1e4
  want_cov = np.cov(x, rowvar=False, ddof=ddof)
  stream = frechet.GaussianStats.empty(12)
  for chunk in np.array_split(x, [1, 7, 8, 100, 250]):  # includes an empty-sized and a 1-row batch
    stream = stream.update(chunk)
  shards = [frechet.GaussianStats.from_features(s) for s in np.array_split(x[::-1], 4)]
  sharded = frechet.merge_all(shards[::-1])
  for s in (stream, sharded):
    assert s.n == 301
    np.testing.assert_allclose(s.mean, x.mean(0), rtol=1e-14)
    np.testing.assert_allclose(s.cov(ddof), want_cov, rtol=1e-9, atol=1e-9 * np.abs(want_cov).max())


def test_divisor_changes_distance_as_expected():
  # With identical means and S2 = 0, d = tr(S1): the N vs N-1 divisor scales it by (n-1)/n.
  rng = np.random.default_rng(4)
  x = rng.normal(size=(10, 3))
  a = frechet.GaussianStats.from_features(x)
  z = frechet.GaussianStats(10, a.mean.copy(), np.zeros((3, 3)))
  d1 = frechet.frechet_distance_from_stats(a, z, ddof=1)
  d0 = frechet.frechet_distance_from_stats(a, z, ddof=0)
  np.testing.assert_allclose(d1, np.trace(np.cov(x, rowvar=False)), rtol=1e-12)
  np.testing.assert_allclose(d0 / d1, 9 / 10, rtol=1e-12)


def test_float64_bitcast_roundtrip_and_single_process_merge():
  rng = np.random.default_rng(5)
  a = rng.normal(size=(4, 4))
  np.testing.assert_array_equal(frechet._f64_to_u32(a).view(np.float64), a)
  s = frechet.GaussianStats.from_features(rng.normal(size=(6, 4)))
  m = frechet.merge_across_processes(s)
  np.testing.assert_array_equal(m.m2, s.m2)
  r = frechet.GaussianStats.from_dict(s.to_dict())
  np.testing.assert_array_equal(r.mean, s.mean)
  with pytest.raises(ValueError, match='ddof'):
    s.cov(2)

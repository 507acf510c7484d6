"""Streaming Gaussian statistics and the Fréchet distance (FVD, FID, FVMD).

All statistics live on the host in float64 (as StyleGAN-V's FVD and pytorch-fid). ``GaussianStats`` keeps the count, the
mean and the centred scatter matrix ``M2 = sum_i (x_i - mean)(x_i - mean)^T`` and merges batches, shards and
hosts with Chan et al.'s parallel update, which stays accurate when the mean is large compared with the
spread (the plain ``sum x x^T - n mean mean^T`` form used by torchmetrics loses digits there).

The Fréchet distance between N(mu1, S1) and N(mu2, S2) is

    d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1^{1/2} S2 S1^{1/2})^{1/2}),

computed with symmetric eigendecompositions only (no ``scipy.linalg.sqrtm``): S1^{1/2} from ``eigh`` with
negative round-off eigenvalues clipped at zero, then the trace term as the sum of square roots of the
eigenvalues of the symmetric PSD matrix S1^{1/2} S2 S1^{1/2}. These eigenvalues equal those of S1 S2, so the
result is symmetric in its arguments up to round-off.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass
class GaussianStats:
  """Running count, mean and centred scatter of D-dimensional features, in float64.

  Attributes:
    n: number of samples seen.
    mean: (D,) float64 sample mean (zeros when ``n == 0``).
    m2: (D, D) float64 centred scatter ``sum_i (x_i - mean)(x_i - mean)^T``.
  """
  n: int
  mean: np.ndarray
  m2: np.ndarray

  @classmethod
  def empty(cls, dim: int) -> 'GaussianStats':
    """Statistics of zero samples of dimension ``dim``."""
    return cls(0, np.zeros((dim,), np.float64), np.zeros((dim, dim), np.float64))

  @classmethod
  def from_features(cls, x) -> 'GaussianStats':
    """Statistics of a (N, D) feature matrix (any float dtype; accumulated in float64)."""
    x = np.asarray(x, np.float64)
    if x.ndim != 2:
      raise ValueError(f'features must be (N, D), got shape {x.shape}; reshape to (num_samples, dim).')
    n = x.shape[0]
    if n == 0:
      return cls.empty(x.shape[1])
    mean = x.mean(axis=0)
    xc = x - mean
    return cls(n, mean, xc.T @ xc)

  @property
  def dim(self) -> int:
    return int(self.mean.shape[0])

  def merge(self, other: 'GaussianStats') -> 'GaussianStats':
    """Combines two disjoint sample sets (Chan, Golub & LeVeque 1979); order does not matter."""
    if other.dim != self.dim:
      raise ValueError(f'cannot merge statistics of dimension {self.dim} and {other.dim}.')
    if other.n == 0:
      return GaussianStats(self.n, self.mean.copy(), self.m2.copy())
    if self.n == 0:
      return GaussianStats(other.n, other.mean.copy(), other.m2.copy())
    n = self.n + other.n
    delta = other.mean - self.mean
    mean = self.mean + delta * (other.n / n)
    m2 = self.m2 + other.m2 + np.outer(delta, delta) * (self.n * other.n / n)
    return GaussianStats(n, mean, m2)

  def update(self, x) -> 'GaussianStats':
    """Returns the statistics after adding the rows of a (N, D) feature batch."""
    return self.merge(GaussianStats.from_features(x))

  def cov(self, ddof: int = 1) -> np.ndarray:
    """(D, D) covariance ``m2 / (n - ddof)``; ``ddof=1`` is ``np.cov`` (N-1), ``ddof=0`` divides by N.

    Raises:
      ValueError: if ``n - ddof <= 0``.
    """
    if ddof not in (0, 1):
      raise ValueError(f'ddof must be 0 (divide by N) or 1 (divide by N-1), got {ddof}.')
    if self.n - ddof <= 0:
      raise ValueError(f'need more than {ddof} samples for a covariance with ddof={ddof}, got n={self.n}.')
    m2 = 0.5 * (self.m2 + self.m2.T)
    return m2 / (self.n - ddof)

  def to_dict(self) -> dict[str, np.ndarray]:
    """Plain arrays, e.g. for ``np.savez``; inverse of ``from_dict``."""
    return {'n': np.asarray(self.n, np.int64), 'mean': self.mean, 'm2': self.m2}

  @classmethod
  def from_dict(cls, d) -> 'GaussianStats':
    return cls(int(d['n']), np.asarray(d['mean'], np.float64), np.asarray(d['m2'], np.float64))


def merge_all(stats) -> GaussianStats:
  """Merges a non-empty sequence of ``GaussianStats`` (e.g. one per shard or host)."""
  stats = list(stats)
  if not stats:
    raise ValueError('merge_all needs at least one GaussianStats.')
  out = stats[0]
  for s in stats[1:]:
    out = out.merge(s)
  return out


def _f64_to_u32(a: np.ndarray) -> np.ndarray:
  return np.ascontiguousarray(a, np.float64).view(np.uint32)


def merge_across_processes(stats: GaussianStats) -> GaussianStats:
  """All-gathers per-host statistics and merges them; a no-op with one JAX process.

  The float64 arrays travel bit-exactly as uint32 pairs, so this works with ``jax_enable_x64`` off.
  """
  import jax  # pylint: disable=g-import-not-at-top
  if jax.process_count() == 1:
    return stats
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  n = multihost_utils.process_allgather(np.asarray([stats.n], np.int32))
  mean = multihost_utils.process_allgather(_f64_to_u32(stats.mean))
  m2 = multihost_utils.process_allgather(_f64_to_u32(stats.m2))
  parts = []
  for i in range(jax.process_count()):
    parts.append(GaussianStats(
        int(np.asarray(n[i]).reshape(-1)[0]),
        np.ascontiguousarray(np.asarray(mean[i], np.uint32)).view(np.float64),
        np.ascontiguousarray(np.asarray(m2[i], np.uint32)).view(np.float64)))
  return merge_all(parts)


def sqrtm_psd(a: np.ndarray) -> np.ndarray:
  """Symmetric square root of a symmetric PSD matrix via ``eigh``; negative round-off eigenvalues -> 0."""
  a = np.asarray(a, np.float64)
  a = 0.5 * (a + a.T)
  w, v = np.linalg.eigh(a)
  w = np.clip(w, 0.0, None)
  return (v * np.sqrt(w)) @ v.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
  """tr((S1^{1/2} S2 S1^{1/2})^{1/2}) for symmetric PSD S1, S2 (= sum of sqrt(eig(S1 S2)))."""
  s1h = sqrtm_psd(sigma1)
  m = s1h @ np.asarray(sigma2, np.float64) @ s1h
  m = 0.5 * (m + m.T)
  w = np.clip(np.linalg.eigvalsh(m), 0.0, None)
  return float(np.sqrt(w).sum())


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
  """Squared Fréchet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2).

  Args:
    mu1, mu2: (D,) means.
    sigma1, sigma2: (D, D) symmetric PSD covariances.

  Returns:
    d^2 >= 0 as a Python float (tiny negative round-off is clipped to 0). This is the number reported as
    FVD / FID (Heusel et al. 2017; StyleGAN-V ``compute_fvd``).
  """
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
  if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
    raise ValueError(f'shape mismatch: mu {mu1.shape} vs {mu2.shape}, sigma {sigma1.shape} vs {sigma2.shape}.')
  diff = mu1 - mu2
  d = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product(sigma1, sigma2)
  return max(float(d), 0.0)


def frechet_distance_from_stats(a: GaussianStats, b: GaussianStats, ddof: int = 1) -> float:
  """Fréchet distance of two ``GaussianStats``; ``ddof=1`` (N-1, as ``np.cov``/StyleGAN-V) or 0 (N)."""
  return frechet_distance(a.mean, a.cov(ddof), b.mean, b.cov(ddof))


def frechet_distance_of_features(a, b, ddof: int = 1) -> float:
  """Fréchet distance between Gaussian fits of two feature sets (..., D) and (..., D), leading axes pooled
  into samples (per-frame features (N, T, D) count as N T samples); float64 statistics, ``ddof`` as above."""
  a, b = np.asarray(a), np.asarray(b)
  return frechet_distance_from_stats(GaussianStats.from_features(a.reshape(-1, a.shape[-1])),
                                     GaussianStats.from_features(b.reshape(-1, b.shape[-1])), ddof)

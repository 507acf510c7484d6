"""Gaussian KL, discretised-Gaussian likelihood and mean_flat (IDDPM `diffusion_utils.py` math), in jnp."""

import math

import jax
import jax.numpy as jnp


def mean_flat(x):
  """Mean over all non-batch axes: (B, ...) -> (B,)."""
  return jnp.mean(x, axis=tuple(range(1, x.ndim)))


def normal_kl(mean1, logvar1, mean2, logvar2):
  """Elementwise KL(N(mean1, e^logvar1) ‖ N(mean2, e^logvar2)) in nats; arguments broadcast."""
  return 0.5 * (-1.0 + logvar2 - logvar1 + jnp.exp(logvar1 - logvar2)
                + jnp.square(mean1 - mean2) * jnp.exp(-logvar2))


def _cdf_logit(x):
  """2·√(2/π)·(x + 0.044715 x³): the tanh CDF approximation written as Φ(x) ≈ sigmoid(_cdf_logit(x))."""
  return 2.0 * math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)


def approx_standard_normal_cdf(x):
  """IDDPM's tanh approximation of the standard normal CDF, 0.5·(1 + tanh(√(2/π)(x + 0.044715x³))).

  Evaluated as the identical sigmoid(2·√(2/π)(x + 0.044715x³)), which keeps relative accuracy in the lower tail
  (max abs error of the approximation itself vs Φ is ~2e-4).
  """
  return jax.nn.sigmoid(_cdf_logit(x))


def discretized_gaussian_log_likelihood(x, means, log_scales):
  """Log-probability (nats) of data discretised to 256 bins on [-1, 1] under N(means, e^{2·log_scales}).

  The bin of x is [x − 1/255, x + 1/255]; the edge bins (x < −0.999, x > 0.999) extend to ∓∞.

  Args:
    x: data, any shape, values nominally uint8/127.5 − 1 (latents are accepted as they are).
    means, log_scales: same shape as x (log_scales = log std = 0.5·log variance).

  Returns:
    Array like x of log-probabilities (each clamped at log(1e-12) from below).
  """
  if not (x.shape == means.shape == log_scales.shape):
    raise ValueError(f'discretized_gaussian_log_likelihood: shapes differ: x {x.shape}, means {means.shape}, '
                     f'log_scales {log_scales.shape}.')
  centered = x - means
  inv_std = jnp.exp(-log_scales)
  a = _cdf_logit(inv_std * (centered + 1.0 / 255.0))  # Φ(upper edge) ≈ sigmoid(a)
  b = _cdf_logit(inv_std * (centered - 1.0 / 255.0))  # Φ(lower edge) ≈ sigmoid(b), b < a
  log_cdf_plus = jnp.log(jnp.maximum(jax.nn.sigmoid(a), 1e-12))
  log_one_minus_cdf_min = jnp.log(jnp.maximum(jax.nn.sigmoid(-b), 1e-12))
  # sigmoid(a) − sigmoid(b) == sigmoid(−b) − sigmoid(−a); take the form whose terms are small (no cancellation
  # of two numbers near 1 in the upper tail).
  delta = jnp.where(b > 0, jax.nn.sigmoid(-b) - jax.nn.sigmoid(-a), jax.nn.sigmoid(a) - jax.nn.sigmoid(b))
  log_cdf_delta = jnp.log(jnp.maximum(delta, 1e-12))
  return jnp.where(x < -0.999, log_cdf_plus,
                   jnp.where(x > 0.999, log_one_minus_cdf_min, log_cdf_delta))

"""Gaussian KL, discretised-Gaussian likelihood and mean_flat (IDDPM `diffusion_utils.py` math), in jnp."""

import math

import jax.numpy as jnp


def mean_flat(x):
  """Mean over all non-batch axes: (B, ...) -> (B,)."""
  return jnp.mean(x, axis=tuple(range(1, x.ndim)))


def normal_kl(mean1, logvar1, mean2, logvar2):
  """Elementwise KL(N(mean1, e^logvar1) ‖ N(mean2, e^logvar2)) in nats; arguments broadcast."""
  return 0.5 * (-1.0 + logvar2 - logvar1 + jnp.exp(logvar1 - logvar2)
                + jnp.square(mean1 - mean2) * jnp.exp(-logvar2))


def approx_standard_normal_cdf(x):
  """tanh approximation of the standard normal CDF (the one IDDPM uses; max abs error ~1e-3)."""
  return 0.5 * (1.0 + jnp.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


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
  cdf_plus = approx_standard_normal_cdf(inv_std * (centered + 1.0 / 255.0))
  cdf_min = approx_standard_normal_cdf(inv_std * (centered - 1.0 / 255.0))
  log_cdf_plus = jnp.log(jnp.maximum(cdf_plus, 1e-12))
  log_one_minus_cdf_min = jnp.log(jnp.maximum(1.0 - cdf_min, 1e-12))
  log_cdf_delta = jnp.log(jnp.maximum(cdf_plus - cdf_min, 1e-12))
  return jnp.where(x < -0.999, log_cdf_plus,
                   jnp.where(x > 0.999, log_one_minus_cdf_min, log_cdf_delta))

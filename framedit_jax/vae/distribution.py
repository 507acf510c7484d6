"""Diagonal Gaussian posterior of the KL autoencoder.

Source: diffusers `DiagonalGaussianDistribution` / LDM `distributions.py`: moments are split
[mean | logvar] along channels, logvar is clamped to [-30, 20], std = exp(logvar / 2).
"""

import jax
import jax.numpy as jnp
import numpy as np

LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0


def split_moments(moments):
  """`(..., 2C)` moments -> (mean `(..., C)`, clamped logvar `(..., C)`), float32."""
  mean, logvar = jnp.split(jnp.asarray(moments, jnp.float32), 2, axis=-1)
  return mean, jnp.clip(logvar, LOGVAR_MIN, LOGVAR_MAX)


def sample(mean, logvar, key):
  """z = mean + exp(logvar / 2) * eps, eps ~ N(0, I) of mean's shape (drawn in one piece from `key`)."""
  eps = jax.random.normal(key, mean.shape, jnp.float32)
  return mean + jnp.exp(0.5 * jnp.clip(logvar, LOGVAR_MIN, LOGVAR_MAX)) * eps


def sample_np(mean, logvar, rng: np.random.Generator):
  """NumPy twin of `sample` for host-side input pipelines; `rng` a numpy Generator."""
  mean = np.asarray(mean, np.float32)
  std = np.exp(0.5 * np.clip(np.asarray(logvar, np.float32), LOGVAR_MIN, LOGVAR_MAX))
  return mean + std * rng.standard_normal(mean.shape, dtype=np.float32)

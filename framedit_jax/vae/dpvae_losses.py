"""DP-VAE training losses (VideoDiT Eq. 2-4) and the hinge GAN losses of its 3D discriminator.

Every squared norm ||a - b||^2 of the paper is taken as a mean over elements (MSE), per example first.
Default weights (VideoDiT §3.1): recon 1, reg 1, LPIPS 0.1, adversarial 0.01.
"""

from typing import Callable, Optional

import jax.numpy as jnp

DEFAULT_WEIGHTS = dict(recon=1.0, reg=1.0, lpips=0.1, adv=0.01)


def _mse_per_example(a, b):
  """`(B, ...)` x2 -> `(B,)` mean squared difference."""
  d = jnp.square(a.astype(jnp.float32) - b.astype(jnp.float32))
  return d.reshape(d.shape[0], -1).mean(axis=1)


def recon_loss(x, x_hat):
  """L_recon = ||x - x_hat||^2 (Eq. 2): videos `(B, T, H, W, 3)` -> `(B,)`."""
  return _mse_per_example(x, x_hat)


def reg_loss(x_k, x_k_hat, mu_z, sigma_z, mu_k, sigma_k):
  """L_reg = ||x_k - D_k(z)||^2 + ||mu_z - mu_k||^2 + ||sigma_z - sigma_k||^2 (Eq. 3).

  Args:
    x_k, x_k_hat: key frames and their decoding by the frozen 2D decoder, `(B, T/t_g, H, W, 3)`.
    mu_z, sigma_z: posterior mean / std of the DP-VAE latent, `(B, T/t_g, h, w, C)`.
    mu_k, sigma_k: posterior mean / std of the 2D VAE latent of the key frames, same shape.
  Returns:
    dict of `(B,)` float32: `key` (first term), `mu`, `sigma`, and their sum `total`.
  """
  terms = dict(key=_mse_per_example(x_k, x_k_hat), mu=_mse_per_example(mu_z, mu_k),
               sigma=_mse_per_example(sigma_z, sigma_k))
  terms['total'] = terms['key'] + terms['mu'] + terms['sigma']
  return terms


def perceptual_loss(perceptual_fn: Optional[Callable], x, x_hat):
  """Mean of `perceptual_fn(frame, frame_hat)` over the frames of `(B, T, H, W, 3)` videos -> `(B,)`.

  `perceptual_fn(x, y) -> (N,)` takes images `(N, H, W, 3)` in [-1, 1] (e.g. LPIPS). None -> zeros.
  """
  b, t = x.shape[:2]
  if perceptual_fn is None:
    return jnp.zeros((b,), jnp.float32)
  d = perceptual_fn(x.reshape((b * t,) + x.shape[2:]), x_hat.reshape((b * t,) + x_hat.shape[2:]))
  return jnp.asarray(d, jnp.float32).reshape(b, t).mean(axis=1)


def hinge_d_loss(logits_real, logits_fake):
  """Discriminator hinge loss mean(relu(1 - D(x))) + mean(relu(1 + D(x_hat))) (Lim & Ye 2017), a scalar."""
  return jnp.mean(jnp.maximum(0.0, 1.0 - logits_real)) + jnp.mean(jnp.maximum(0.0, 1.0 + logits_fake))


def hinge_g_loss(logits_fake):
  """Generator side of the hinge GAN: -mean(D(x_hat)), a scalar."""
  return -jnp.mean(logits_fake)

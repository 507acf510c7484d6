"""Noise (beta) schedules, as IDDPM defines them (official `diffusion/gaussian_diffusion.py`).

All schedules are returned as float64 numpy arrays of shape (num_steps,), in (0, 1].
"""

import math

import numpy as np

# Names accepted for the cosine schedule (IDDPM calls it "cosine", diffusers "squaredcos_cap_v2").
_COSINE_NAMES = ('cosine', 'squaredcos_cap_v2')


def linear_betas(num_steps):
  """Ho et al. linear schedule, rescaled so that any `num_steps` spans the same range.

  Args:
    num_steps: number of diffusion steps T (int > 0).

  Returns:
    (T,) float64 betas from 1e-4·1000/T to 0.02·1000/T, evenly spaced.
  """
  scale = 1000.0 / num_steps
  return np.linspace(scale * 1e-4, scale * 0.02, num_steps, dtype=np.float64)


def betas_for_alpha_bar(num_steps, alpha_bar, max_beta=0.999):
  """Discretises a continuous ᾱ(s), s ∈ [0, 1], into betas: β_i = min(1 − ᾱ((i+1)/T)/ᾱ(i/T), max_beta).

  Args:
    num_steps: number of diffusion steps T.
    alpha_bar: callable s -> ᾱ(s) (float -> float), decreasing from ~1 at s=0.
    max_beta: upper clip for each beta (avoids a singular last step).

  Returns:
    (T,) float64 betas.
  """
  betas = [min(1.0 - alpha_bar((i + 1) / num_steps) / alpha_bar(i / num_steps), max_beta)
           for i in range(num_steps)]
  return np.asarray(betas, dtype=np.float64)


def cosine_betas(num_steps):
  """Nichol & Dhariwal cosine schedule: ᾱ(s) = cos²((s + 0.008)/1.008 · π/2), betas capped at 0.999."""
  return betas_for_alpha_bar(
      num_steps, lambda s: math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2)


def get_named_beta_schedule(name, num_steps):
  """Returns the (num_steps,) float64 betas of a named schedule.

  Args:
    name: 'linear', or 'cosine' / 'squaredcos_cap_v2' (same schedule).
    num_steps: number of diffusion steps (int > 0).

  Raises:
    ValueError: unknown name or non-positive num_steps.
  """
  if int(num_steps) <= 0:
    raise ValueError(f'diffusion_steps must be a positive integer, got {num_steps!r}.')
  if name == 'linear':
    return linear_betas(int(num_steps))
  if name in _COSINE_NAMES:
    return cosine_betas(int(num_steps))
  raise ValueError(f"noise_schedule={name!r} is unknown; use 'linear' or 'cosine' (alias 'squaredcos_cap_v2').")

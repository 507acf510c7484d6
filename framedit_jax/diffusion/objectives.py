"""Training objective factory: `config.diffusion.objective` -> IDDPM `GaussianDiffusion` or `RectifiedFlow`.

  objective = 'iddpm' (default; official FrameDiT / Latte) | 'rectified_flow' (SD3, used by VideoDiT's base model)
Both expose `training_losses(model_fn, x0, t, noise)` -> {'loss', 'mse', ...}; their samplers are picked by
`framedit_jax.diffusion.samplers`; `sample_train_timesteps` draws the t each expects (int steps vs float in (0, 1)).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from framedit_jax.diffusion.rectified_flow import RectifiedFlow

OBJECTIVES = ('iddpm', 'rectified_flow')


def rectified_flow_from_config(d: Any, num_sample_steps: int = 50) -> RectifiedFlow:
  """`RectifiedFlow` from config.diffusion fields rf_shift, rf_logit_mean, rf_logit_std (defaults 1, 0, 1).

  Raises:
    ValueError: learn_sigma is set (the velocity objective has no variance channels).
  """
  if d.get('learn_sigma', False):
    raise ValueError("config.diffusion.objective='rectified_flow' predicts a velocity only: set "
                     'config.diffusion.learn_sigma=False and config.model.learn_sigma=False.')
  return RectifiedFlow(shift=float(d.get('rf_shift', 1.0)), logit_mean=float(d.get('rf_logit_mean', 0.0)),
                       logit_std=float(d.get('rf_logit_std', 1.0)), num_sample_steps=int(num_sample_steps))


def create_objective(d: Any, num_sample_steps: int = 50):
  """The training objective named by `d.objective` (d = config.diffusion; 'iddpm' when absent).

  Raises:
    ValueError: unknown objective (one line naming the choices).
  """
  objective = d.get('objective', 'iddpm')
  if objective == 'rectified_flow':
    return rectified_flow_from_config(d, num_sample_steps)
  if objective != 'iddpm':
    raise ValueError(f'config.diffusion.objective must be one of {OBJECTIVES}, got {objective!r}.')
  from framedit_jax.diffusion.factory import create_diffusion  # pylint: disable=g-import-not-at-top
  return create_diffusion(timestep_respacing='', noise_schedule=d.noise_schedule, learn_sigma=d.learn_sigma,
                          diffusion_steps=d.diffusion_steps, predict=d.get('predict', 'epsilon'))


def sample_train_timesteps(objective: Any, key: jax.Array, batch_size: int) -> jax.Array:
  """`(B,)` training times: `objective.sample_t` if it has one (rectified flow: float in (0, 1)), else uniform
  int32 steps in [0, num_timesteps) (IDDPM)."""
  if hasattr(objective, 'sample_t'):
    return objective.sample_t(key, batch_size)
  return jax.random.randint(key, (batch_size,), 0, objective.num_timesteps, dtype=jnp.int32)

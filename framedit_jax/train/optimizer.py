"""Optimizer: AdamW behind a global-norm clip that switches on at ``start_clip_iter``.

Official FrameDiT/Latte (train.py): the gradient norm is measured every step but clipped to
``clip_max_norm`` only once ``train_steps >= start_clip_iter`` (before that it is clipped to ``inf``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax


class ScheduledClipState(NamedTuple):
  count: jax.Array  # number of updates applied so far (int32 scalar)


def scheduled_clip_by_global_norm(max_norm: float, start_step: int) -> optax.GradientTransformation:
  """Clips gradients to ``max_norm`` global norm once ``count >= start_step``; identity before.

  Args:
    max_norm: the clip threshold (official 0.1). ``<= 0`` disables clipping.
    start_step: the first step (0-based count of completed updates) at which clipping applies
      (official ``start_clip_iter`` = 20000).
  """

  def init_fn(params):
    del params
    return ScheduledClipState(count=jnp.zeros([], jnp.int32))

  def update_fn(updates, state, params=None):
    del params
    if max_norm <= 0:
      return updates, ScheduledClipState(count=state.count + 1)
    g_norm = optax.global_norm(updates)
    active = state.count >= start_step
    # Same formula as torch.nn.utils.clip_grad_norm_: scale = max_norm / (norm + 1e-6), capped at 1.
    scale = jnp.where(active, jnp.minimum(1.0, max_norm / (g_norm + 1e-6)), 1.0)
    updates = jax.tree.map(lambda g: (g * scale).astype(g.dtype), updates)
    return updates, ScheduledClipState(count=state.count + 1)

  return optax.GradientTransformation(init_fn, update_fn)


def learning_rate_schedule(optim_config) -> optax.Schedule:
  """Constant learning rate (official) with an optional linear warm-up of ``warmup_steps``.

  With ``decay_steps > 0`` (an option; every official recipe is constant): linear warm-up from 0, then a cosine
  decay from ``lr`` to 0 that ends at step ``decay_steps`` (warm-up included) and stays 0 after it, as
  ``optax.warmup_cosine_decay_schedule`` (Loshchilov & Hutter 2017, SGDR eq. 5 without restarts).
  """
  if optim_config.get('decay_steps', 0) > 0:
    return optax.warmup_cosine_decay_schedule(0.0, optim_config.lr, optim_config.warmup_steps,
                                              optim_config.decay_steps, end_value=0.0)
  if optim_config.warmup_steps > 0:
    return optax.linear_schedule(0.0, optim_config.lr, optim_config.warmup_steps)
  return optax.constant_schedule(optim_config.lr)


def make_optimizer(optim_config) -> optax.GradientTransformation:
  """Builds ``clip -> AdamW`` from ``config.optim`` (lr, b1, b2, eps, weight_decay, clip_max_norm, start_clip_iter)."""
  return optax.chain(
      scheduled_clip_by_global_norm(optim_config.clip_max_norm, optim_config.start_clip_iter),
      optax.adamw(
          learning_rate=learning_rate_schedule(optim_config),
          b1=optim_config.b1,
          b2=optim_config.b2,
          eps=optim_config.eps,
          weight_decay=optim_config.weight_decay,
      ),
  )

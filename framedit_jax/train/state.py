"""The training state: one pytree holding everything a checkpoint must restore."""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax


class TrainState(flax.struct.PyTreeNode):
  """Parameters, optimizer state, EMA and RNG of one training run.

  Attributes:
    step: int32 scalar, number of completed optimizer updates.
    params: float32 model parameters.
    opt_state: optax state of ``make_optimizer``.
    ema_params: exponential moving average of ``params`` (decay ``config.optim.ema_decay``); sample from these.
    rng: raw ``uint32[2]`` PRNG key; per-step keys are ``fold_in(rng, step)``.
  """
  step: jax.Array
  params: Any
  opt_state: Any
  ema_params: Any
  rng: jax.Array


def create_train_state(params: Any, optimizer: optax.GradientTransformation, rng: jax.Array) -> TrainState:
  """Fresh state at step 0. EMA starts as a copy of ``params`` (official ``update_ema(ema, model, decay=0)``)."""
  return TrainState(
      step=jnp.zeros([], jnp.int32),
      params=params,
      opt_state=optimizer.init(params),
      ema_params=jax.tree.map(jnp.array, params),
      rng=rng,
  )


def ema_update(ema_params: Any, params: Any, decay: float) -> Any:
  """``ema <- decay * ema + (1 - decay) * params`` (official utils.update_ema)."""
  return jax.tree.map(lambda e, p: e * decay + p.astype(e.dtype) * (1.0 - decay), ema_params, params)


def ema_update_every(ema_params: Any, params: Any, step: jax.Array, every: int, decay: float) -> Any:
  """The official T2V EMA schedule: at 0-based step ``step``, update with ``decay ** every`` iff ``step % every == 0``.

  Official ``train_t2v_accelerate.py``: after the optimizer step, ``if train_steps % ema_update_every == 0:
  update_ema(ema, model, decay=0.9999 ** ema_update_every)``, then ``train_steps += 1``; so the EMA moves after the
  1st, (every+1)-th, ... update, with the per-update decay compounded over ``every`` steps. ``every=1`` is
  ``ema_update``.
  """
  if every <= 1:
    return ema_update(ema_params, params, decay)
  return jax.lax.cond(step % every == 0, lambda e: ema_update(e, params, decay ** every), lambda e: e, ema_params)

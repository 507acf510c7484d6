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

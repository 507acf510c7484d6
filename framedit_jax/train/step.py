"""The jitted train step: hybrid diffusion loss, gradient accumulation, clip, AdamW, EMA, NaN guard."""

from __future__ import annotations

import functools
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from framedit_jax.diffusion.objectives import sample_train_timesteps
from framedit_jax.parallel.frame_parallel import apply_model
from framedit_jax.parallel.mesh import to_device_memory
from framedit_jax.train.optimizer import learning_rate_schedule
from framedit_jax.train.state import TrainState, ema_update_every


def drop_labels(key: jax.Array, y: jax.Array, num_classes: int, prob: float) -> jax.Array:
  """Replaces each label by the null label ``num_classes`` with probability ``prob`` (CFG training).

  Done here rather than inside the model so that the draw is per *global* batch element and gradient
  accumulation gives the same result as one large batch.
  """
  drop = jax.random.uniform(key, y.shape) < prob
  return jnp.where(drop, num_classes, y)


def _split_micro(x: jax.Array, k: int) -> jax.Array:
  if x.shape[0] % k:
    raise ValueError(f'config.optim.grad_accum_steps={k} must divide the batch size {x.shape[0]}.')
  return x.reshape((k, x.shape[0] // k) + x.shape[1:])


def accumulate_grads(grad_fn: Callable, params, inputs: tuple, grad_accum_steps: int = 1):
  """``grad_fn(params, *inputs) -> ((loss, metrics), grads)`` over ``grad_accum_steps`` equal micro-batches.

  Every array of ``inputs`` (None entries pass through) is split along its leading (batch) axis; gradients and
  metrics are averaged over the micro-batches with a ``lax.scan``, so the result equals the single-batch one
  (up to float summation order) when every random draw was made for the whole batch beforehand.

  Returns:
    ``(grads, metrics)``.
  Raises:
    ValueError: ``grad_accum_steps`` does not divide the batch (one line).
  """
  if grad_accum_steps == 1:
    (_, metrics), grads = grad_fn(params, *inputs)
    return grads, metrics

  k = grad_accum_steps
  micro = tuple(None if a is None else jax.tree.map(lambda x: _split_micro(x, k), a) for a in inputs)

  def body(carry, xs):
    g_acc, m_acc = carry
    (_, m), g = grad_fn(params, *xs)
    return (jax.tree.map(jnp.add, g_acc, g), jax.tree.map(jnp.add, m_acc, m)), None

  zeros_g = jax.tree.map(jnp.zeros_like, params)
  first = tuple(None if a is None else jax.tree.map(lambda x: x[0], a) for a in micro)
  zeros_m = jax.eval_shape(lambda: grad_fn(params, *first)[0][1])
  zeros_m = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), zeros_m)
  (g_sum, m_sum), _ = jax.lax.scan(body, (zeros_g, zeros_m), micro)
  return jax.tree.map(lambda g: g / k, g_sum), jax.tree.map(lambda m: m / k, m_sum)


def loss_and_grads(params, model: nn.Module, diffusion, x0, t, noise, y, *, grad_accum_steps: int = 1):
  """Mean hybrid loss over the batch and its gradient, accumulated over ``grad_accum_steps`` micro-batches.

  Args:
    params: model parameters.
    model: a framedit_jax model (``apply(x_t, t, y)`` -> ``(B, T, H, W, C_out)``).
    diffusion: a ``framedit_jax.diffusion`` object (``training_losses``).
    x0: clean latents ``(B, T, H, W, C)``.
    t: int32 ``(B,)`` timesteps; noise: ``(B, T, H, W, C)``; y: int32 ``(B,)`` labels or None.
    grad_accum_steps: number of equal micro-batches; the result equals the single-batch one (up to float
      summation order) because t, noise and label dropout are drawn for the whole batch beforehand.

  Returns:
    ``(grads, metrics)`` where metrics holds batch means of ``loss``, ``mse`` and ``vb``.
  """

  def micro_loss(p, x0_m, t_m, noise_m, y_m):
    # model.apply, or its jax.shard_map over T when model.frame_axis is a mesh axis of size > 1 (frame parallelism).
    model_fn = lambda x_t, tt: apply_model(model, p, x_t, tt, y_m)
    return diffusion_loss(diffusion, model_fn, x0_m, t_m, noise_m)

  return accumulate_grads(jax.value_and_grad(micro_loss, has_aux=True), params, (x0, t, noise, y),
                          grad_accum_steps)


def diffusion_loss(diffusion, model_fn, x0, t, noise):
  """``(mean loss, {loss, mse, vb batch means})`` of ``diffusion.training_losses`` (IDDPM or rectified flow)."""
  terms = diffusion.training_losses(model_fn, x0, t, noise=noise)
  loss = jnp.mean(terms['loss'])
  return loss, {k: jnp.mean(terms[k]) for k in ('loss', 'mse', 'vb') if k in terms}


def apply_gradients(state, grads, metrics, optimizer: optax.GradientTransformation, config, *,
                    ema_every: int = 1):
  """The optimizer update shared by the diffusion tasks: AdamW (+ clip), EMA, NaN policy, norms.

  Args:
    state: a ``TrainState`` (``params``, ``opt_state``, ``ema_params``, ``step``).
    grads, metrics: of ``state.params`` (``metrics['loss']`` is checked for finiteness).
    optimizer: ``make_optimizer(config.optim)``.
    config: uses ``optim.ema_decay``, ``train.nan_policy`` and ``optim`` (the lr metric).
    ema_every: EMA update every this many steps (official T2V ``ema_update_every``, with ``ema_decay ** every``
      at 0-based steps ``k % every == 0``); 1 = every step.
  Returns:
    ``(new_state, metrics)``; metrics add grad_norm, param_norm, update_norm, finite, lr. With
    ``nan_policy='skip'`` a non-finite step leaves the state unchanged except ``step``.
  """
  # config.train.host_offload: the moments, then the EMA, come from host memory only once grads / params exist
  state = state.replace(opt_state=to_device_memory(state.opt_state, after=grads))
  updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  state = state.replace(ema_params=to_device_memory(state.ema_params, after=params))
  # official T2V phase: update at 0-based steps k % every == 0 with decay ** every (state.ema_update_every)
  ema_params = ema_update_every(state.ema_params, params, state.step, ema_every, config.optim.ema_decay)

  grad_norm = optax.global_norm(grads)
  finite = jnp.isfinite(metrics['loss']) & jnp.isfinite(grad_norm)
  new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state, ema_params=ema_params)
  if config.train.nan_policy == 'skip':
    new_state = keep_if_finite(finite, new_state, state, ('params', 'opt_state', 'ema_params'))

  metrics = dict(metrics)
  metrics.update(grad_norm=grad_norm, param_norm=optax.global_norm(params),
                 update_norm=optax.global_norm(updates), finite=finite.astype(jnp.float32),
                 lr=learning_rate_schedule(config.optim)(state.step))
  return new_state, metrics


def keep_if_finite(finite, new_state, old_state, fields):
  """``new_state`` with ``fields`` reverted to ``old_state``'s where ``finite`` is False (``nan_policy='skip'``)."""
  keep_old = lambda new, old: jnp.where(finite, new, old)
  return new_state.replace(**{f: jax.tree.map(keep_old, getattr(new_state, f),
                                              to_device_memory(getattr(old_state, f)))
                              for f in fields})


def train_step(state: TrainState, batch: dict[str, jax.Array], *, model: nn.Module, diffusion,
               optimizer: optax.GradientTransformation, config) -> tuple[TrainState, dict[str, jax.Array]]:
  """One optimizer update.

  Args:
    state: the current ``TrainState``.
    batch: ``{"video": (B, T, H, W, C) latents (already VAE-encoded and scaled), "label": int32 (B,)}``, and
      optionally ``"label_image": int32 (B, use_image_num)`` (the image-joint frames' own labels, dropped for
      CFG independently of the clip's label; passed to the model as ``y`` of shape ``(B, 1 + use_image_num)``).
    model, diffusion, optimizer: static collaborators.
    config: the full config (static): uses ``model.num_classes``, ``model.class_dropout_prob``,
      ``optim.grad_accum_steps``, ``optim.ema_decay``, ``train.nan_policy``.

  Returns:
    ``(new_state, metrics)``; metrics are scalars: loss, mse, vb, grad_norm, param_norm, update_norm,
    finite (1.0 if loss and grads are finite). With ``nan_policy='skip'`` a non-finite step leaves the
    state unchanged except ``step`` (the loop halts on it with ``'halt'``).
  """
  x0 = batch['video'].astype(jnp.float32)
  b = x0.shape[0]
  key = jax.random.fold_in(state.rng, state.step)
  k_t, k_noise, k_drop = jax.random.split(key, 3)
  t = sample_train_timesteps(diffusion, k_t, b)  # IDDPM int steps | rectified-flow float t
  noise = jax.random.normal(k_noise, x0.shape, jnp.float32)
  y = None
  if config.model.num_classes > 0:
    y = batch['label'].astype(jnp.int32)
    if 'label_image' in batch:  # (B, 1 + use_image_num): image frames carry their own labels (official y_image)
      y = jnp.concatenate([y[:, None], batch['label_image'].astype(jnp.int32)], axis=1)
    y = drop_labels(k_drop, y, config.model.num_classes, config.model.class_dropout_prob)  # each independently

  grads, metrics = loss_and_grads(state.params, model, diffusion, x0, t, noise, y,
                                  grad_accum_steps=config.optim.grad_accum_steps)
  return apply_gradients(state, grads, metrics, optimizer, config)


def jit_train_step(fn: Callable, state_shardings=None, batch_shardings=None, frozen_shardings=None) -> Callable:
  """THE jitted train step of every task: ``jax.jit(fn)`` with the state donated and shardings pinned.

  ``fn(state, batch, frozen) -> (state, metrics)`` (a task's ``step_fn()``); ``frozen`` holds constant inputs
  (None for most tasks). With ``state_shardings`` given, the state keeps them in and out, the batch gets
  ``batch_shardings`` and ``frozen`` ``frozen_shardings``. State fields whose shardings are in host memory
  (``config.train.host_offload``) come in and go out there; the step's optimizer update reads them with
  ``parallel.mesh.to_device_memory(..., after=grads)``.
  """
  kwargs = {}
  if state_shardings is not None:
    kwargs['in_shardings'] = (state_shardings, batch_shardings, frozen_shardings)
    kwargs['out_shardings'] = (state_shardings, None)
  return jax.jit(fn, donate_argnums=0, **kwargs)


def make_train_step(model, diffusion, optimizer, config, *, state_shardings=None, batch_shardings=None
                    ) -> Callable[[TrainState, dict], tuple[TrainState, dict]]:
  """The video-diffusion step ``step(state, batch)`` jitted by ``jit_train_step`` (for benchmarks and tests)."""
  fn = functools.partial(train_step, model=model, diffusion=diffusion, optimizer=optimizer, config=config)
  step = jit_train_step(lambda s, b, frozen: fn(s, b), state_shardings, batch_shardings)
  return lambda state, batch: step(state, batch, None)

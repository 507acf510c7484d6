"""Our side of tools/parity_training.py: our train step, fed the same draws as the official loop.

The class-conditional step is `framedit_jax.train.step.train_step` with its three random draws (timesteps,
noise, label drops) taken from the caller: `loss_and_grads` -> `apply_gradients` (AdamW + clip of
`make_optimizer(config.optim)`, then the EMA), on the state of `create_train_state`. tests/test_parity_training.py checks that this equals `train_step` itself when given the
draws `train_step` makes from its key. The T2V step is the T2V task's (`framedit_jax.train.tasks.t2v`): the
loss on the merged params, then the same `apply_gradients`.

Mutations (`MUTATIONS`) change OUR side only, to show the comparison catches them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from framedit_jax.diffusion import create_diffusion
from framedit_jax.train.optimizer import make_optimizer
from framedit_jax.train.state import create_train_state, ema_update_every
from framedit_jax.train.step import apply_gradients, diffusion_loss, loss_and_grads

MUTATIONS = ('none', 'eps_x100', 'weight_decay_on', 'ema_decay_0.999', 'clip_from_step_0', 'ema_before_step')


def optim_config(recipe: dict, mutation: str = 'none') -> ml_collections.ConfigDict:
  """`config.optim` for the recipe (official AdamW: b1 0.9, b2 0.999, eps 1e-8), with `mutation` applied."""
  if mutation not in MUTATIONS:
    raise ValueError(f'--mutation {mutation!r}: choose from {", ".join(MUTATIONS)}.')
  o = ml_collections.ConfigDict(dict(lr=recipe['lr'], b1=recipe.get('b1', 0.9), b2=recipe.get('b2', 0.999), eps=1e-8,
                                     weight_decay=recipe.get('weight_decay', 0.0),
                                     warmup_steps=recipe.get('warmup_steps', 0), clip_max_norm=recipe['clip_max_norm'],
                                     start_clip_iter=recipe['start_clip_iter'], ema_decay=0.9999,
                                     ema_update_every=recipe.get('ema_update_every', 1), grad_accum_steps=1))
  if mutation == 'eps_x100':
    o.eps *= 100
  elif mutation == 'weight_decay_on':
    # torch AdamW's default 1e-2, which the official train.py sets to 0; a recipe that already decays (the official
    # T2V script, 1e-4) gets 100x its value, since "on" would change nothing there
    o.weight_decay = o.weight_decay * 100 if o.weight_decay else 1e-2
  elif mutation == 'ema_decay_0.999':
    o.ema_decay = 0.999
  elif mutation == 'clip_from_step_0':
    o.start_clip_iter = 0
  return o


def adam_moments(opt_state) -> tuple[Any, Any]:
  """(mu, nu) of the AdamW inside `make_optimizer`'s state."""
  return optax.tree_utils.tree_get(opt_state, 'mu'), optax.tree_utils.tree_get(opt_state, 'nu')


@dataclasses.dataclass
class Run:
  losses: np.ndarray
  grad_norms: np.ndarray
  params: Any
  ema: Any
  mu: Any
  nu: Any


def _config(optim) -> ml_collections.ConfigDict:
  """What `step.apply_gradients` reads: optim (ema_decay, the lr metric) and train.nan_policy."""
  return ml_collections.ConfigDict(dict(optim=optim.to_dict(), train=dict(nan_policy='halt')))


def update(state, grads, metrics, optimizer, optim, ema_first: bool, every: int = 1):
  """`step.apply_gradients` (AdamW + clip, then EMA), or with `ema_first` the EMA moved before the update.

  The mutation runs `ema_update_every` on the old params and then `apply_gradients` with ema_decay 1 (whose EMA
  step `e * 1 + p * 0` leaves the EMA exactly as it is).
  """
  config = _config(optim)
  if ema_first:
    state = state.replace(ema_params=ema_update_every(state.ema_params, state.params, state.step, every,
                                                      optim.ema_decay))
    config.optim.ema_decay = 1.0
  return apply_gradients(state, grads, metrics, optimizer, config, ema_every=every)


def class_step(model, diffusion, optimizer, optim) -> Callable:
  """jitted `(state, x0, t, noise, y) -> (state, loss, grad_norm)`; y already holds the dropped labels.

  `train_step` without its random draws: `loss_and_grads` then `apply_gradients`.
  """
  ema_first = optim.get('ema_before_step', False)

  def step(state, x0, t, noise, y):
    grads, metrics = loss_and_grads(state.params, model, diffusion, x0, t, noise, y)
    state, metrics = update(state, grads, metrics, optimizer, optim, ema_first)
    return state, metrics['loss'], metrics['grad_norm']

  return jax.jit(step)


def class_run(model, params, draws: dict, recipe: dict, mutation: str = 'none') -> Run:
  """Our class-conditional run over the draws (same layout as `parity_training_official.class_loop`)."""
  optim = optim_config(recipe, mutation)
  optim.ema_before_step = mutation == 'ema_before_step'
  optimizer = make_optimizer(optim)
  diffusion = create_diffusion('', learn_sigma=True)
  state = create_train_state(jax.tree.map(jnp.asarray, params), optimizer, jax.random.key_data(jax.random.key(0)))
  step = class_step(model, diffusion, optimizer, optim)
  losses, norms = [], []
  for k in range(len(draws['t'])):
    y = np.where(draws['drop'][k], model.num_classes, draws['y'][k]).astype(np.int32)  # step.drop_labels' rule
    state, loss, norm = step(state, jnp.asarray(draws['x0'][k]), jnp.asarray(draws['t'][k], jnp.int32),
                             jnp.asarray(draws['noise'][k]), jnp.asarray(y))
    losses.append(float(loss))
    norms.append(float(norm))
  mu, nu = adam_moments(state.opt_state)
  return Run(np.array(losses), np.array(norms), *jax.device_get((state.params, state.ema_params, mu, nu)))


def split_trainable(params, mask) -> tuple[dict, dict]:
  """(trainable, frozen) flat dicts of `params` by a same-structure boolean `mask` tree."""
  flat = flax.traverse_util.flatten_dict(params)
  keep = flax.traverse_util.flatten_dict(mask)
  return ({k: v for k, v in flat.items() if keep[k]}, {k: v for k, v in flat.items() if not keep[k]})


def t2v_run(module, params, mask, draws: dict, recipe: dict, mutation: str = 'none') -> Run:
  """Our T2V run: the T2V task's step (tasks/t2v.py) without its draws: the loss of the model on the merged
  (trainable, frozen) params, then `apply_gradients` over the trainable subtree, EMA every `ema_update_every`."""
  optim = optim_config(recipe, mutation)
  optimizer = make_optimizer(optim)
  diffusion = create_diffusion('', learn_sigma=True)
  trainable, frozen = split_trainable(params, mask)
  trainable = {k: jnp.asarray(v) for k, v in trainable.items()}
  full = lambda tr: flax.traverse_util.unflatten_dict({**frozen, **tr})
  ema_first = mutation == 'ema_before_step'
  every = int(optim.ema_update_every)

  @jax.jit
  def step(state, x0, t, noise, text):
    fn = lambda p: diffusion_loss(diffusion, lambda x, tt: module.apply({'params': full(p)}, x, tt, text), x0, t,
                                  noise)
    (_, metrics), grads = jax.value_and_grad(fn, has_aux=True)(state.params)
    state, metrics = update(state, grads, metrics, optimizer, optim, ema_first, every)
    return state, metrics['loss'], metrics['grad_norm']

  state = create_train_state(trainable, optimizer, jax.random.key_data(jax.random.key(0)))
  losses, norms = [], []
  for k in range(len(draws['t'])):
    state, loss, norm = step(state, jnp.asarray(draws['x0'][k]), jnp.asarray(draws['t'][k], jnp.int32),
                             jnp.asarray(draws['noise'][k]), jnp.asarray(draws['text'][k]))
    losses.append(float(loss))
    norms.append(float(norm))
  trainable, opt_state, ema = state.params, state.opt_state, state.ema_params
  mu, nu = adam_moments(opt_state)
  unflat = lambda d: flax.traverse_util.unflatten_dict(dict(d))
  return Run(np.array(losses), np.array(norms), *jax.device_get((unflat(trainable), unflat(ema), unflat(mu),
                                                                 unflat(nu))))


def probe(module, params, draws: dict, kind: str, mask=None) -> tuple[np.ndarray, Any]:
  """Our loss at every step's draws and the gradient at the last one, at `params` (see the official `probe`)."""
  diffusion = create_diffusion('', learn_sigma=True)

  def loss_fn(p, x0, t, noise, cond):
    if kind == 'class':
      fn = lambda x, tt: module.apply({'params': p}, x, tt, cond)
    else:
      fn = lambda x, tt: module.apply({'params': p}, x, tt, cond)
    return jnp.mean(diffusion.training_losses(fn, x0, t, noise)['loss'])

  value_and_grad = jax.jit(jax.value_and_grad(loss_fn))
  losses, grads = [], None
  for k in range(len(draws['t'])):
    cond = (np.where(draws['drop'][k], module.num_classes, draws['y'][k]).astype(np.int32) if kind == 'class'
            else draws['text'][k])
    loss, grads = value_and_grad(params, jnp.asarray(draws['x0'][k]), jnp.asarray(draws['t'][k], jnp.int32),
                                 jnp.asarray(draws['noise'][k]), jnp.asarray(cond))
    losses.append(float(loss))
  return np.array(losses), jax.device_get(grads)

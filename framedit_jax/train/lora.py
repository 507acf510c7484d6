"""LoRA (Hu et al. 2021) for Flax params: low-rank updates on chosen Dense layers, train only them, merge back.

The official T2V recipe (`train_t2v_accelerate.py`, peft `LoraConfig`) puts rank 32, alpha 32 adapters on
`to_q`, `to_k`, `to_v`, `to_out.0` of every attention. For a targeted Dense with kernel W `(in, out)`:

    y = x W + b + (alpha / rank) · (x A) B,     A `(in, rank)`, B `(rank, out)`

A starts as peft does (uniform ±1/sqrt(in), kaiming-uniform with a = sqrt 5) and B at zero, so the adapted model
starts equal to the base model. Two equivalent ways to run it:
  * merged:   `merge_lora(params, lora, cfg)` returns params with W + (alpha/rank) A B (for sampling/export);
  * unmerged: `with lora_interceptor(lora, cfg): model.apply({'params': params}, ...)` adds the low-rank branch
    inside each targeted Dense (the base kernel is untouched).
Training: differentiate a loss with respect to `lora` only (`merge_lora(jax.lax.stop_gradient(base), lora, cfg)`
inside the loss); the optimizer state then covers the adapters alone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Any, Iterator, Mapping

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp

from framedit_jax.models.cpu.split_dense import SplitDense

DEFAULT_TARGETS = ('to_q', 'to_k', 'to_v', 'to_out.0')


@dataclasses.dataclass(frozen=True)
class LoraConfig:
  """rank r, alpha (scale = alpha / r) and target Dense names (official `to_out.0` == our `to_out_0`)."""
  rank: int = 32
  alpha: float = 32.0
  target_modules: tuple[str, ...] = DEFAULT_TARGETS

  @property
  def scale(self) -> float:
    return float(self.alpha) / float(self.rank)

  def targets(self) -> tuple[str, ...]:
    return tuple(t.replace('.', '_') for t in self.target_modules)


def _kernel_paths(params: Mapping[str, Any], cfg: LoraConfig) -> list[tuple[str, ...]]:
  """Paths (without the leaf) of every 2-D Dense kernel whose module name is a target."""
  flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(params))
  names = cfg.targets()
  return sorted(p[:-1] for p, v in flat.items() if p[-1] == 'kernel' and p[-2] in names and jnp.ndim(v) == 2)


def init_lora(params: Mapping[str, Any], cfg: LoraConfig, key: jax.Array) -> dict[str, Any]:
  """Adapters for every targeted Dense in `params`.

  Returns:
    Nested dict mirroring the module paths: `{..., 'to_q': {'lora_a': (in, r), 'lora_b': (r, out)}}`, float32.

  Raises:
    ValueError: rank < 1, or no Dense layer matches `target_modules` (one line listing the Dense names found).
  """
  if cfg.rank < 1:
    raise ValueError(f'lora rank must be >= 1, got {cfg.rank}.')
  paths = _kernel_paths(params, cfg)
  if not paths:
    flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(params))
    found = sorted({p[-2] for p in flat if p[-1] == 'kernel' and len(p) > 1})
    raise ValueError(f'lora target_modules {cfg.target_modules} match no Dense layer; names found: {found[:20]}.')
  flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(params))
  out = {}
  for i, path in enumerate(paths):
    fan_in, fan_out = flat[path + ('kernel',)].shape
    bound = 1.0 / math.sqrt(fan_in)
    out[path + ('lora_a',)] = jax.random.uniform(jax.random.fold_in(key, i), (fan_in, cfg.rank), jnp.float32,
                                                 -bound, bound)
    out[path + ('lora_b',)] = jnp.zeros((cfg.rank, fan_out), jnp.float32)
  return flax.traverse_util.unflatten_dict(out)


def merge_lora(params: Mapping[str, Any], lora: Mapping[str, Any], cfg: LoraConfig) -> dict[str, Any]:
  """Params with every adapted kernel replaced by `W + (alpha/rank) A B` (differentiable in both)."""
  flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(params))
  adapters = flax.traverse_util.flatten_dict(flax.core.unfreeze(lora))
  out = dict(flat)
  for path in {p[:-1] for p in adapters}:
    k = path + ('kernel',)
    if k not in flat:
      raise ValueError(f'lora adapter {"/".join(path)} has no base kernel in params.')
    a, b = adapters[path + ('lora_a',)], adapters[path + ('lora_b',)]
    out[k] = flat[k] + cfg.scale * (a @ b).astype(flat[k].dtype)
  return flax.traverse_util.unflatten_dict(out)


@contextlib.contextmanager
def lora_interceptor(lora: Mapping[str, Any], cfg: LoraConfig) -> Iterator[None]:
  """Within the context, targeted `nn.Dense` calls return `base(x) + (alpha/rank) (x A) B` (unmerged LoRA).

  The Dense is matched by its module path (the path of `lora`'s adapters, relative to the root module).
  """
  adapters = flax.traverse_util.flatten_dict(flax.core.unfreeze(lora))
  by_path = {p[:-1]: (adapters[p[:-1] + ('lora_a',)], adapters[p[:-1] + ('lora_b',)]) for p in adapters}

  def intercept(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    mod = context.module
    if context.method_name != '__call__' or not isinstance(mod, (nn.Dense, SplitDense)):
      return out
    ab = by_path.get(tuple(mod.path))
    if ab is None:
      return out
    x = args[0]
    a, b = ab
    delta = cfg.scale * ((x.astype(jnp.float32) @ a) @ b)
    if isinstance(mod, SplitDense):  # the same Dense returned as column blocks (fused qkv)
      return tuple(o + d.astype(o.dtype) for o, d in zip(out, jnp.split(delta, mod.splits, axis=-1)))
    return out + delta.astype(out.dtype)

  with nn.intercept_methods(intercept):
    yield


def count_params(tree: Mapping[str, Any]) -> int:
  """Number of scalars in a pytree."""
  return int(sum(x.size for x in jax.tree_util.tree_leaves(tree)))

"""Classifier-free guidance forward (official `forward_with_cfg` in `models/latte.py`)."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


def forward_with_cfg(module: nn.Module, params: Any, x: jax.Array, t: jax.Array, y: jax.Array, cfg_scale: float,
                     null_label: int | None = None) -> jax.Array:
  """Guided model output `eps = u + s (c - u)` on the eps channels only.

  Runs the conditional (labels y) and unconditional (labels `null_label`) passes as one batched apply of 2B.

  Args:
    module: a class-conditional `LatteStyleDiT` (num_classes > 0).
    params: its params.
    x: `(B, T, H, W, C)` (not doubled by the caller).
    t: `(B,)` int timesteps.
    y: `(B,)` int labels.
    cfg_scale: guidance scale s (1 = conditional output).
    null_label: label of the unconditional pass; defaults to `module.num_classes` (never hard-coded 101).

  Returns:
    float32 `(B, T, H, W, C_out)`: the first `in_channels` channels guided, the variance channels (learn_sigma)
    taken from the conditional pass.

  Raises:
    ValueError: the module is unconditional or y is missing.
  """
  if module.num_classes <= 0 and null_label is None:
    raise ValueError('forward_with_cfg needs a class-conditional model (num_classes > 0) or an explicit null_label.')
  if y is None:
    raise ValueError('forward_with_cfg needs labels y of shape (B,).')
  null = module.num_classes if null_label is None else null_label
  b = x.shape[0]
  y = jnp.asarray(y, jnp.int32)
  out = module.apply({'params': params}, jnp.concatenate([x, x], 0), jnp.concatenate([t, t], 0),
                     jnp.concatenate([y, jnp.full_like(y, null)], 0), train=False)
  cond, uncond = out[:b], out[b:]
  c = module.in_channels
  eps = uncond[..., :c] + cfg_scale * (cond[..., :c] - uncond[..., :c])
  return jnp.concatenate([eps, cond[..., c:]], axis=-1)

"""Classifier-free guidance: one model_fn wrapper for class labels and text embeddings.

The conditional and the unconditional pass run as one batch of 2B (conditional rows first), and

    eps = eps_u + s (eps_c - eps_u)      on the first `eps_channels` output channels,

while the remaining channels (learned variance, `learn_sigma`) are taken from the conditional pass. This is the
official class-conditional `forward_with_cfg` of FrameDiT and Latte (`models/latte.py`, `models/framedit_h.py`:
guidance on the first 4 = latent channels, the rest passed through, null label = num_classes), and the official
text-to-video pipeline (`pipeline/pipeline_latte.py`: negative prompt "" embedded by the same T5, the same
formula; that pipeline guides all channels and then drops the variance half, which gives the same ε). The
unconditional condition is the null label (class models) or the null/empty-prompt embedding (text models).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp


def guided_model_fn(apply_fn: Callable[..., jax.Array], cond: dict[str, Any] | None = None,
                    null_cond: dict[str, Any] | None = None, cfg_scale: Any = 1.0,
                    eps_channels: int | None = None) -> Callable[[jax.Array, jax.Array], jax.Array]:
  """`model_fn(x_t, t)` for the samplers, classifier-free guided when `null_cond` is given.

  Args:
    apply_fn: `(x (N, ..., C), t (N,), **cond) -> (N, ..., C_out)`, e.g. a class model called with `y=` or a
      text model called with `text=, mask=`.
    cond: keyword arguments of `apply_fn`, each an array with leading batch axis B (labels `(B,)`, prompt
      embeddings `(B, L, D)` and masks `(B, L)`); None for an unconditional model.
    null_cond: the unconditional counterpart with the same keys, each leaf broadcastable to its `cond` leaf
      (a scalar null label, a `(L, D)` empty-prompt embedding and `(L,)` mask). None: no guidance, one call.
    cfg_scale: guidance scale s (a Python float or a traced scalar; 1 gives the conditional output, 0 the
      unconditional one).
    eps_channels: leading output channels that are guided (the latent channels C); None guides all of them.

  Returns:
    `model_fn(x (B, ..., C), t (B,)) -> (B, ..., C_out)`.

  Raises:
    ValueError: `null_cond` without `cond`, or keys that differ (one line).
  """
  cond = dict(cond or {})
  if null_cond is None:
    return lambda x, t: apply_fn(x, t, **cond)
  if not cond or set(null_cond) != set(cond):
    raise ValueError(f'guided_model_fn: null_cond keys {sorted(null_cond)} must equal cond keys {sorted(cond)}.')

  def model_fn(x, t):
    b = x.shape[0]
    both = {k: jnp.concatenate([jnp.asarray(v), jnp.broadcast_to(jnp.asarray(null_cond[k], jnp.asarray(v).dtype),
                                                                  jnp.shape(v))]) for k, v in cond.items()}
    out = apply_fn(jnp.concatenate([x, x]), jnp.concatenate([t, t]), **both)
    c_out, u_out = out[:b], out[b:]
    n = out.shape[-1] if eps_channels is None else int(eps_channels)
    eps = u_out[..., :n] + cfg_scale * (c_out[..., :n] - u_out[..., :n])
    return jnp.concatenate([eps.astype(out.dtype), c_out[..., n:]], axis=-1)

  return model_fn

"""Classifier-free guidance as a model_fn wrapper (official `forward_with_cfg`, batch kept at B)."""

import jax.numpy as jnp


def cfg_model_fn(model_fn, y, null_label, cfg_scale, eps_channels=None, label_kwarg='y'):
  """Wraps a class-conditional model_fn so that samplers get guided outputs.

  out = uncond + cfg_scale · (cond − uncond) on the first `eps_channels` output channels (last axis); the other
  channels (learned variance) come from the conditional pass. Conditional and unconditional passes run as one
  batch of 2B. Official FrameDiT/Latte guide only the first 4 channels (= latent channels): pass
  eps_channels=in_channels to reproduce that; None guides every channel.

  Args:
    model_fn: (x (2B, ..., C), t (2B,), **{label_kwarg: (2B,) labels}, **kw) -> (2B, ..., C_out).
    y: (B,) int class labels.
    null_label: int label of the "no class" embedding (num_classes in DiT/Latte).
    cfg_scale: guidance scale (1.0 = no guidance).
    eps_channels: number of leading output channels to guide (None = all).
    label_kwarg: keyword under which model_fn takes the labels.

  Returns:
    guided_fn(x (B, ..., C), t (B,), **kw) -> (B, ..., C_out).
  """
  def guided_fn(x, t, **kw):
    b = x.shape[0]
    labels = jnp.concatenate([jnp.asarray(y), jnp.full_like(jnp.asarray(y), null_label)])
    out = model_fn(jnp.concatenate([x, x]), jnp.concatenate([t, t]), **{label_kwarg: labels}, **kw)
    cond, uncond = out[:b], out[b:]
    n = out.shape[-1] if eps_channels is None else eps_channels
    guided = uncond[..., :n] + cfg_scale * (cond[..., :n] - uncond[..., :n])
    return jnp.concatenate([guided, cond[..., n:]], axis=-1)

  return guided_fn

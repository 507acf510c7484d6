"""adaLN-Zero transformer blocks and the final layer (DiT, Peebles & Xie 2023; official `models/latte.py`).

Every block: `mod = adaLN_modulation(SiLU(c))` split into (shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp,
gate_mlp); `x += gate_msa * mixer(modulate(LN(x)))`; `x += gate_mlp * mlp(modulate(LN(x)))`. LN is non-affine
with eps 1e-6. The modulation is computed once per batch element (or per frame) and broadcast over tokens -- the
official G/H/DiT3D code repeats c to every token, which gives the same numbers at a much higher cost.
LayerNorm, adaLN and the residual stream are float32; the mixer and MLP run in `dtype`.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from framedit_jax.models import cpu
from framedit_jax.models.attention import Attention, MatrixAttention
from framedit_jax.models.fusion import HybridTemporalAttention, local_temporal
from framedit_jax.parallel.activations import constrain_batch

MIXERS = ('spatial', 'local', 'matrix', 'hybrid', 'full3d')


def layer_norm(x: jax.Array, eps: float = 1e-6) -> jax.Array:
  """Non-affine LayerNorm over the last axis in float32 (biased variance, like torch)."""
  x = x.astype(jnp.float32)
  mean = jnp.mean(x, axis=-1, keepdims=True)
  var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
  return (x - mean) * jax.lax.rsqrt(var + eps)


def modulate(x: jax.Array, shift: jax.Array, scale: jax.Array) -> jax.Array:
  """`x * (1 + scale) + shift` (shift/scale already broadcastable to x)."""
  return x * (1.0 + scale) + shift


def broadcast_condition(mod: jax.Array, ndim: int) -> jax.Array:
  """Per-batch `(B, K)` or per-frame `(B, T, K)` modulation -> broadcastable to `(B, T, N, K)`."""
  if mod.ndim == 2:
    return mod[:, None, None, :] if ndim == 4 else mod[:, None, :]
  return mod[:, :, None, :]


REMAT_POLICIES = ('none', 'full', 'dots_saveable', 'dots_with_no_batch_dims_saveable', 'everything_saveable')


def remat_policy(name: str, remat: bool = False) -> Any:
  """The `jax.checkpoint` policy for a block, or None for no rematerialisation.

  Args:
    name: 'none' (store every activation), 'full' (store only the block inputs, recompute the rest in the
      backward), 'dots_saveable' (store matmul outputs, recompute elementwise work), 'dots_with_no_batch_dims_saveable'
      (store only the weight-matmul outputs, recompute attention scores), 'everything_saveable'.
    remat: legacy switch; True with name 'none' means 'full'.

  Raises:
    ValueError: unknown name.
  """
  if name not in REMAT_POLICIES:
    raise ValueError(f'remat_policy must be one of {REMAT_POLICIES}, got {name!r}.')
  if name == 'none':
    name = 'full' if remat else 'none'
  if name == 'none':
    return None
  if name == 'full':
    return jax.checkpoint_policies.nothing_saveable
  return getattr(jax.checkpoint_policies, name)


def unrolled_only(model: str, overrides: dict[str, Any]) -> dict[str, Any]:
  """`overrides` without `scan_blocks` / `cpu_kernels`, for models whose blocks always run unrolled without the
  CPU kernels (Latte design space, VideoDiT); `remat_policy` is kept (they remat each block with it).

  `model` names the model in errors (kept for callers).
  """
  del model
  return {k: v for k, v in overrides.items() if k not in ('scan_blocks', 'cpu_kernels')}


class Mlp(nn.Module):
  """timm `Mlp`: `fc1` (D -> hidden) -> tanh-GELU -> `fc2` (hidden -> D).

  `cpu_kernels`: both Denses with the XLA CPU backward (`framedit_jax.models.cpu`; same params and numbers).
  """
  hidden_features: int
  dtype: Any = jnp.float32
  cpu_kernels: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    d = x.shape[-1]
    dense = lambda n, name: nn.Dense(n, dtype=self.dtype, kernel_init=nn.initializers.xavier_uniform(), name=name,
                                     dot_general=cpu.dot_general(self.cpu_kernels))
    h = dense(self.hidden_features, 'fc1')(x.astype(self.dtype))
    h = jax.nn.gelu(h, approximate=True)
    return dense(d, 'fc2')(h)


class DiTBlock(nn.Module):
  """One adaLN-Zero block on `(B, T, N, D)` float32 activations.

  Attributes:
    mixer: 'spatial' (attention over the N tokens of each frame), 'local' (Local Factorized: attention over T
      for each token), 'matrix' (Matrix Attention, FrameDiT-G), 'hybrid' (FrameDiT-H) or 'full3d' (attention over
      all T*N tokens, DiT3D).
    Other attributes configure the mixer (see `MatrixAttention`, `HybridTemporalAttention`).
    frame_axis: mesh axis sharding T when run inside `jax.shard_map` (frame parallelism): temporal mixers then
      communicate over it (all-to-all for 'local', K/V all-gather for 'matrix' / 'full3d'); None = unsharded.
    context_parallel: 'gather' (that K/V all-gather), 'ring' or 'ulysses' for 'matrix' / 'full3d' / the matrix
      branch of 'hybrid' (`framedit_jax.parallel.context_parallel`); 'local' is always the all-to-all.
    cpu_kernels: the XLA CPU backward kernels (`framedit_jax.models.cpu`: the cotangent barrier at both sublayer
      inputs, and the mixers' and MLP's matmul backward); same params and numbers.

  Call: `block(x (B, T, N, D), c (B, D) or (B, T, D))` -> `(B, T, N, D)` float32.
  """
  hidden_size: int
  num_heads: int
  mixer: str = 'spatial'
  mlp_ratio: float = 4.0
  qk_col_dim: int = 128
  v_col_dim: int = 512
  num_col_heads: int = 64
  u_type: str = 'param'
  fuse_mode: str = 'concat'
  dtype: Any = jnp.float32
  attention_kernel: str = 'einsum'
  frame_axis: str | None = None
  cpu_kernels: bool = False
  context_parallel: str = 'gather'

  def _mix(self, x: jax.Array) -> jax.Array:
    b, t, n, d = x.shape
    attn = lambda kv_axis=None: Attention(self.num_heads, self.dtype, self.attention_kernel, kv_axis=kv_axis,
                                          cpu_kernels=self.cpu_kernels, context_parallel=self.context_parallel,
                                          name='attn')
    if self.mixer == 'spatial':
      return attn()(x.reshape(b * t, n, d)).reshape(b, t, n, d)
    if self.mixer == 'local':
      return local_temporal(attn(), x, self.frame_axis)
    if self.mixer == 'full3d':
      return attn(self.frame_axis)(x.reshape(b, t * n, d)).reshape(b, t, n, d)
    if self.mixer == 'matrix':
      return MatrixAttention(self.qk_col_dim, self.v_col_dim, self.num_col_heads, self.num_heads, self.u_type,
                             dtype=self.dtype, frame_axis=self.frame_axis, cpu_kernels=self.cpu_kernels,
                             context_parallel=self.context_parallel, name='attn')(x)
    if self.mixer == 'hybrid':
      return HybridTemporalAttention(self.qk_col_dim, self.v_col_dim, self.num_col_heads, self.num_heads,
                                     self.u_type, self.fuse_mode, self.dtype, self.attention_kernel,
                                     frame_axis=self.frame_axis, cpu_kernels=self.cpu_kernels,
                                     context_parallel=self.context_parallel, name='attn')(x)
    raise ValueError(f'mixer must be one of {MIXERS}, got {self.mixer!r}.')

  @nn.compact
  def __call__(self, x: jax.Array, c: jax.Array) -> jax.Array:
    mod = nn.Dense(6 * self.hidden_size, kernel_init=nn.initializers.zeros, name='adaLN_modulation')(
        nn.silu(c.astype(jnp.float32)))
    mod = broadcast_condition(constrain_batch(mod), x.ndim)
    shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = jnp.split(mod, 6, axis=-1)
    # constrain_batch: under a data x fsdp mesh the activations keep their batch sharding and only the weights
    # are gathered (framedit_jax.parallel.activations); the identity otherwise.
    x = cpu.barrier(constrain_batch(x), self.cpu_kernels)
    h = modulate(layer_norm(x), shift_msa, scale_msa).astype(self.dtype)
    x = x + gate_msa * constrain_batch(self._mix(h)).astype(jnp.float32)
    x = cpu.barrier(x, self.cpu_kernels)
    h = modulate(layer_norm(x), shift_mlp, scale_mlp).astype(self.dtype)
    mlp = Mlp(int(self.hidden_size * self.mlp_ratio), self.dtype, self.cpu_kernels, name='mlp')
    return constrain_batch(x + gate_mlp * constrain_batch(mlp(h)).astype(jnp.float32))


class FinalLayer(nn.Module):
  """LN -> adaLN (shift, scale) -> `linear` (D -> p*p*C_out); `adaLN_modulation` and `linear` start at zero.

  `(B, T, N, D)`, c `(B, D)` or `(B, T, D)` -> float32 `(B, T, N, p*p*C_out)`, channel order (p_row, p_col, C_out).
  """
  hidden_size: int
  patch_size: int
  out_channels: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, c: jax.Array) -> jax.Array:
    mod = nn.Dense(2 * self.hidden_size, kernel_init=nn.initializers.zeros, name='adaLN_modulation')(
        nn.silu(c.astype(jnp.float32)))
    shift, scale = jnp.split(broadcast_condition(mod, x.ndim), 2, axis=-1)
    h = modulate(layer_norm(x), shift, scale).astype(self.dtype)
    out = nn.Dense(self.patch_size**2 * self.out_channels, dtype=self.dtype, kernel_init=nn.initializers.zeros,
                   name='linear')(h)
    return out.astype(jnp.float32)

"""FrameDiT-H temporal mixer: Local Factorized attention fused with Matrix Attention.

Source: official `models/framedit_h.py`; the gated form is FrameDiT supplement §2.3 Eq. 18.

Official `FusedMatrixAttention` (`models/framedit_h.py`). Both branches read the same modulated input:
  * concat: `Y = output_linear([LN_l(local) ; LN_g(global)])` (one Linear 2D -> D);
  * gated (supplement eq. 18):
    `Y = gamma_l * sigmoid(alpha) * LN_l(local) + gamma_g * (1 - sigmoid(alpha)) * LN_g(global)`,
    alpha = 0 and gamma = 1e-4 at init;
  * sum: `(LN_l(local) + LN_g(global)) / sqrt(2)`; local: the local branch only (no norms, no matrix branch).
The fusion LayerNorms are affine with eps 1e-5 (torch default) and run in float32.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from framedit_jax.models import cpu
from framedit_jax.models.attention import Attention, MatrixAttention
from framedit_jax.parallel.collectives import frames_to_tokens, tokens_to_frames

FUSE_MODES = ('concat', 'gated', 'sum', 'local')


def local_temporal(attn: nn.Module, x: jax.Array, frame_axis: str | None = None) -> jax.Array:
  """Runs a `(B', L, D)` attention module over frames for each token: `(B, T, N, D)` -> `(B, T, N, D)`.

  With `frame_axis` bound by an enclosing `jax.shard_map` (x is then `(B, T/f, N, D)`), an all-to-all makes every
  frame of N/f tokens local, the module attends over all T, and a second all-to-all restores the frame sharding.
  """
  x = frames_to_tokens(x, frame_axis)
  b, t, n, d = x.shape
  y = attn(jnp.swapaxes(x, 1, 2).reshape(b * n, t, d))
  return tokens_to_frames(jnp.swapaxes(y.reshape(b, n, t, d), 1, 2), frame_axis)


class HybridTemporalAttention(nn.Module):
  """FrameDiT-H mixer `(B, T, N, D)` -> `(B, T, N, D)`.

  Submodules: `local_attention` (Attention, `num_row_heads` heads; official `vanilla_attention`),
  `matrix_attention` (MatrixAttention), `norm_local`, `norm_global`, and `output_linear` (concat) or params
  `alpha`, `gamma_local`, `gamma_global` (gated). `frame_axis`: see `local_temporal` and `MatrixAttention`.
  """
  qk_col_dim: int
  v_col_dim: int
  num_col_heads: int
  num_row_heads: int
  u_type: str = 'param'
  fuse_mode: str = 'concat'
  dtype: Any = jnp.float32
  attention_kernel: str = 'einsum'
  frame_axis: str | None = None
  cpu_kernels: bool = False  # XLA CPU backward kernels for every projection (framedit_jax.models.cpu)
  context_parallel: str = 'gather'  # the matrix branch's frame-parallel K/V (see `MatrixAttention`)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.fuse_mode not in FUSE_MODES:
      raise ValueError(f'fuse_mode must be one of {FUSE_MODES}, got {self.fuse_mode!r}.')
    d = x.shape[-1]
    local = local_temporal(
        Attention(self.num_row_heads, self.dtype, self.attention_kernel, cpu_kernels=self.cpu_kernels,
                  name='local_attention'), x, self.frame_axis)
    if self.fuse_mode == 'local':
      return local
    glob = MatrixAttention(self.qk_col_dim, self.v_col_dim, self.num_col_heads, self.num_row_heads, self.u_type,
                           dtype=self.dtype, frame_axis=self.frame_axis, cpu_kernels=self.cpu_kernels,
                           context_parallel=self.context_parallel, name='matrix_attention')(x)
    norm = lambda name: nn.LayerNorm(epsilon=1e-5, dtype=jnp.float32, use_fast_variance=False, name=name)
    local = norm('norm_local')(local.astype(jnp.float32))
    glob = norm('norm_global')(glob.astype(jnp.float32))
    if self.fuse_mode == 'gated':
      alpha = jax.nn.sigmoid(self.param('alpha', nn.initializers.zeros, (d,), jnp.float32))
      gamma_l = self.param('gamma_local', nn.initializers.constant(1e-4), (d,), jnp.float32)
      gamma_g = self.param('gamma_global', nn.initializers.constant(1e-4), (d,), jnp.float32)
      return gamma_l * local * alpha + gamma_g * glob * (1.0 - alpha)
    if self.fuse_mode == 'sum':
      return (local + glob) * (1.0 / math.sqrt(2.0))
    if self.cpu_kernels:
      return cpu.ConcatLinear(d, self.dtype, name='output_linear')(local, glob)
    return nn.Dense(d, dtype=self.dtype, kernel_init=nn.initializers.xavier_uniform(), name='output_linear')(
        jnp.concatenate([local, glob], axis=-1))


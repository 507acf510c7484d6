"""Attention layers: multi-head attention (spatial / local temporal / full 3D) and Matrix Attention.

The math lives in small pure functions (`dot_product_attention`, `matrix_linear`, `matrix_attention_weights`,
`matrix_attention_apply`, `matrix_attention`) so that a frame-parallel (shard_map) version can reuse them; the
Flax modules only own the parameters.

Matrix Attention (FrameDiT-G; supplement §1 Eq. 11, official `models/framedit_g.py`): frame X_t (N x D) is projected by
`MatrixLinear(X) = U^T X W + B`; r rows are split into C column heads of a rows, D into R row heads of b columns;
score(t, t') = <Q_t^h, K_t'^h>_F / sqrt(a b), softmax over t', output sum_t' A V_t'^h, re-tiled and projected by a
MatrixLinear back to N x D.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from framedit_jax.models import cpu
from framedit_jax.parallel import context_parallel as cp
from framedit_jax.parallel.collectives import frame_axis_size, gather_frames

ATTENTION_KERNELS = ('einsum', 'cudnn', 'xla')
U_TYPES = ('param', 'softmax', 'identity')


def dot_product_attention(q: jax.Array, k: jax.Array, v: jax.Array, kernel: str = 'einsum') -> jax.Array:
  """Softmax attention over the length axis.

  Args:
    q, k, v: `(B, L, H, d)` (same shape; L may differ between q and k/v).
    kernel: 'einsum' (reference: logits and softmax in float32), 'cudnn' (`jax.nn.dot_product_attention`, cuDNN on
      a GPU with a 16-bit dtype, XLA otherwise) or 'xla' (`jax.nn.dot_product_attention(implementation='xla')`).

  Returns:
    `(B, L, H, d)` in q's dtype.

  Raises:
    ValueError: unknown kernel.
  """
  if kernel == 'einsum':
    scale = q.shape[-1]**-0.5
    logits = jnp.einsum('bqhd,bkhd->bhqk', q, k, preferred_element_type=jnp.float32) * scale
    weights = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
    return jnp.einsum('bhqk,bkhd->bqhd', weights, v)
  if kernel == 'cudnn':
    use_cudnn = jax.default_backend() == 'gpu' and q.dtype in (jnp.bfloat16, jnp.float16)
    return jax.nn.dot_product_attention(q, k, v, implementation='cudnn' if use_cudnn else None)
  if kernel == 'xla':
    return jax.nn.dot_product_attention(q, k, v, implementation='xla')
  raise ValueError(f'attention_kernel must be one of {ATTENTION_KERNELS}, got {kernel!r}.')


def matrix_linear(x: jax.Array, u: jax.Array | None, w: jax.Array, cpu_kernels: bool = False) -> jax.Array:
  """`U^T X W` for every frame, contracting in the cheaper order.

  Args:
    x: `(..., N, D)`.
    u: `(N, r)` token map, or None for U = I.
    w: `(D, K)` channel map.
    cpu_kernels: U^T and W with the XLA CPU backward kernels (`cpu.token_map`, `cpu.matmul`; same values).

  Returns:
    `(..., r, K)`. Cost per frame: (U^T X) W = r N D + r D K, U^T (X W) = N D K + r N K; the smaller is used, so
    the r > N projections never pay 2 r D^2 (order picked by shape).
  """
  xw = lambda a: cpu.matmul(a, w, cpu_kernels)
  if u is None:
    return xw(x)
  n, d = x.shape[-2:]
  r, k = u.shape[1], w.shape[1]
  if r * n * d + r * d * k <= n * d * k + r * n * k:
    return xw(cpu.token_map(u, x, cpu_kernels))
  return cpu.token_map(u, xw(x), cpu_kernels)


def _split_heads(x: jax.Array, num_col_heads: int, num_row_heads: int) -> jax.Array:
  """`(B, T, r, D)` -> `(B, T, C, a, R, b)` with r = C a (column heads outer) and D = R b (row heads outer)."""
  b_, t, r, d = x.shape
  return x.reshape(b_, t, num_col_heads, r // num_col_heads, num_row_heads, d // num_row_heads)


def matrix_attention_weights(q: jax.Array, k: jax.Array, num_col_heads: int, num_row_heads: int) -> jax.Array:
  """Frame-to-frame attention map of Matrix Attention.

  Args:
    q: `(B, T, r_qk, D)` query matrices; k: `(B, S, r_qk, D)` key matrices (S = T unless k/v are sharded).
    num_col_heads: C (divides r_qk); num_row_heads: R (divides D).

  Returns:
    float32 `(B, C*R, T, S)` softmax over S of <Q_t^h, K_s^h>_F / sqrt(a b); head index h = c * R + r.
  """
  qh = _split_heads(q, num_col_heads, num_row_heads)
  kh = _split_heads(k, num_col_heads, num_row_heads)
  scale = (qh.shape[3] * qh.shape[5])**-0.5
  logits = jnp.einsum('ztcarw,zscarw->zcrts', qh, kh, preferred_element_type=jnp.float32) * scale
  weights = jax.nn.softmax(logits, axis=-1)
  bsz, t, s = q.shape[0], q.shape[1], k.shape[1]
  return weights.reshape(bsz, num_col_heads * num_row_heads, t, s)


def matrix_attention_apply(weights: jax.Array, v: jax.Array, num_col_heads: int, num_row_heads: int) -> jax.Array:
  """`O_t^h = sum_s A^h[t, s] V_s^h`, re-tiled.

  Args:
    weights: `(B, C*R, T, S)` attention map.
    v: `(B, S, r_v, D)` value matrices.

  Returns:
    `(B, T, r_v, D)` in v's dtype.
  """
  vh = _split_heads(v, num_col_heads, num_row_heads)
  bsz, hh, t, s = weights.shape
  w6 = weights.reshape(bsz, num_col_heads, num_row_heads, t, s).astype(v.dtype)
  out = jnp.einsum('zcrts,zscarw->ztcarw', w6, vh)
  return out.reshape(bsz, t, v.shape[2], v.shape[3])


def matrix_attention(q: jax.Array, k: jax.Array, v: jax.Array, num_col_heads: int,
                     num_row_heads: int) -> tuple[jax.Array, jax.Array]:
  """Matrix Attention core: returns `(out (B, T, r_v, D), weights (B, C*R, T, T))`; see the two functions above."""
  weights = matrix_attention_weights(q, k, num_col_heads, num_row_heads)
  return matrix_attention_apply(weights, v, num_col_heads, num_row_heads), weights


def matrix_heads(x: jax.Array, num_col_heads: int, num_row_heads: int) -> jax.Array:
  """`(B, T, r, D)` -> `(B, T, C*R, a*b)`: Matrix Attention's heads as ordinary attention heads (head index
  c * R + r as in `matrix_attention_weights`), so <Q_t^h, K_s^h>_F is a dot product over the last axis."""
  b_, t = x.shape[:2]
  xh = _split_heads(x, num_col_heads, num_row_heads)  # (B, T, C, a, R, b)
  return jnp.transpose(xh, (0, 1, 2, 4, 3, 5)).reshape(b_, t, num_col_heads * num_row_heads, -1)


def matrix_heads_inverse(x: jax.Array, num_col_heads: int, num_row_heads: int, hidden: int) -> jax.Array:
  """Inverse of `matrix_heads`: `(B, T, C*R, a*b)` -> `(B, T, C*a, R*b)` with `R*b = hidden`."""
  b_, t = x.shape[:2]
  bw = hidden // num_row_heads
  x = x.reshape(b_, t, num_col_heads, num_row_heads, -1, bw)  # (B, T, C, R, a, b)
  return jnp.transpose(x, (0, 1, 2, 4, 3, 5)).reshape(b_, t, -1, hidden)


def _xavier() -> Any:
  return nn.initializers.xavier_uniform()


class Attention(nn.Module):
  """Multi-head self-attention with a biased `qkv` Dense and a `proj` Dense (timm / official `Attention`).

  `(B, L, D)` -> `(B, L, D)`; the qkv channel order is (3, heads, head_dim) as in the official reshape.
  `kv_axis`: inside a `jax.shard_map` that shards L over this mesh axis (Full 3D frame parallelism), K and V are
  all-gathered over it so each shard's queries see every token; None or unbound = plain attention.
  `cpu_kernels`: `qkv` as `cpu.SplitDense` and both Denses with the XLA CPU backward (`framedit_jax.models.cpu`;
  same params and numbers).
  `context_parallel`: 'gather' (that all-gather), 'ring' or 'ulysses' (`framedit_jax.parallel.context_parallel`:
  each shard keeps only its own tokens' K/V; same numbers).
  """
  num_heads: int
  dtype: Any = jnp.float32
  attention_kernel: str = 'einsum'
  use_bias: bool = True
  kv_axis: str | None = None
  cpu_kernels: bool = False
  context_parallel: str = 'gather'

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    bsz, length, d = x.shape
    if d % self.num_heads:
      raise ValueError(f'hidden_size {d} must be divisible by num_heads {self.num_heads}.')
    dense = lambda n, name, bias: nn.Dense(n, use_bias=bias, dtype=self.dtype, kernel_init=_xavier(), name=name,
                                           dot_general=cpu.dot_general(self.cpu_kernels))
    # One Dense `qkv`, official channel order (3, heads, head_dim).
    if self.cpu_kernels:
      q, k, v = (a.reshape(bsz, length, self.num_heads, d // self.num_heads)
                 for a in cpu.SplitDense(3 * d, 3, self.use_bias, self.dtype, _xavier(), name='qkv')(x))
    else:
      qkv = dense(3 * d, 'qkv', self.use_bias)(x.astype(self.dtype))
      qkv = qkv.reshape(bsz, length, 3, self.num_heads, d // self.num_heads)
      q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
    if self.context_parallel != 'gather' and frame_axis_size(self.kv_axis) > 1:
      out = cp.sharded_attention(q, k, v, self.kv_axis, self.context_parallel)
    else:
      k, v = gather_frames(k, self.kv_axis), gather_frames(v, self.kv_axis)
      out = dot_product_attention(q, k, v, self.attention_kernel)
    return dense(d, 'proj', True)(out.reshape(bsz, length, d))


class MatrixLinear(nn.Module):
  """`Y = U^T X W + B` on every frame: `(..., N, D)` -> `(..., out_rows, out_cols)`.

  Params: `u (N, out_rows)` (xavier; absent for `u_type='identity'`), `w (D, out_cols)` (xavier), `bias
  (out_rows, out_cols)` (zeros), and `u_temperature (1, out_rows)` (ones) for `u_type='softmax'`, where the
  effective U is `softmax(u / u_temperature)` over N (column-normalised). Official `MatrixLinear`.
  `cpu_kernels`: the XLA CPU backward kernels (`framedit_jax.models.cpu`; same params and numbers).
  """
  out_rows: int
  out_cols: int
  u_type: str = 'param'
  use_bias: bool = True
  dtype: Any = jnp.float32
  cpu_kernels: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    n, d = x.shape[-2:]
    if self.u_type == 'identity':
      if n != self.out_rows:
        raise ValueError(f"u_type='identity' needs r == N, got r={self.out_rows}, N={n}; use u_type='param'.")
      u = None
    elif self.u_type in ('param', 'softmax'):
      u = self.param('u', _xavier(), (n, self.out_rows), jnp.float32)
      if self.u_type == 'softmax':
        temp = self.param('u_temperature', nn.initializers.ones, (1, self.out_rows), jnp.float32)
        u = jax.nn.softmax(u / temp, axis=0)
      u = u.astype(self.dtype)
    else:
      raise ValueError(f'u_type must be one of {U_TYPES}, got {self.u_type!r}.')
    w = self.param('w', _xavier(), (d, self.out_cols), jnp.float32).astype(self.dtype)
    y = matrix_linear(x.astype(self.dtype), u, w, self.cpu_kernels)
    if self.use_bias:
      bias = self.param('bias', nn.initializers.zeros, (self.out_rows, self.out_cols), jnp.float32)
      y = cpu.bias_add(y, bias.astype(self.dtype), self.cpu_kernels)
    return y


class MatrixAttention(nn.Module):
  """Matrix Attention over frames (FrameDiT-G): `(B, T, N, D)` -> `(B, T, N, D)`.

  Submodules `linear_q`, `linear_k` (N -> r_qk rows), `linear_v` (N -> r_v rows) and `proj_v` (r_v -> N rows) are
  MatrixLinears. The `(B, C*R, T, T)` attention map is sown as `intermediates/attn_map` (read it with
  `module.apply(..., mutable=['intermediates'])`).
  `frame_axis`: inside a `jax.shard_map` sharding T over this mesh axis, K and V are all-gathered over it (the
  projections stay per frame, only the T x T scores are global; the sown map is then `(B, C*R, T/f, T)`).
  `cpu_kernels`: passed to the MatrixLinears (`framedit_jax.models.cpu`).
  `context_parallel`: 'gather' (the K/V all-gather above), 'ring' or 'ulysses': the C*R heads run as ordinary
  attention heads of dim a*b (`matrix_heads`) through `framedit_jax.parallel.context_parallel`, each shard keeping
  only its own frames' K/V; same numbers, but no attention map is sown.
  """
  qk_col_dim: int
  v_col_dim: int
  num_col_heads: int
  num_row_heads: int
  u_type: str = 'param'
  use_bias: bool = True
  dtype: Any = jnp.float32
  frame_axis: str | None = None
  cpu_kernels: bool = False
  context_parallel: str = 'gather'

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    n, d = x.shape[-2:]
    c, r = self.num_col_heads, self.num_row_heads
    if self.qk_col_dim % c or self.v_col_dim % c:
      raise ValueError(f'qk_col_dim={self.qk_col_dim} and v_col_dim={self.v_col_dim} must be divisible by '
                       f'num_col_heads={c}.')
    if d % r:
      raise ValueError(f'hidden_size={d} must be divisible by num_row_heads={r}.')
    ml = lambda rows, name: MatrixLinear(rows, d, self.u_type, self.use_bias, self.dtype, self.cpu_kernels,
                                         name=name)
    q = ml(self.qk_col_dim, 'linear_q')(x)
    k = ml(self.qk_col_dim, 'linear_k')(x)
    v = ml(self.v_col_dim, 'linear_v')(x)
    if self.context_parallel != 'gather' and frame_axis_size(self.frame_axis) > 1:
      heads = lambda a: matrix_heads(a, c, r)
      out = cp.sharded_attention(heads(q), heads(k), heads(v), self.frame_axis, self.context_parallel)
      return ml(n, 'proj_v')(matrix_heads_inverse(out, c, r, d))
    k, v = gather_frames(k, self.frame_axis), gather_frames(v, self.frame_axis)
    out, weights = matrix_attention(q, k, v, c, r)
    self.sow('intermediates', 'attn_map', weights)
    return ml(n, 'proj_v')(out)

"""FrameDiT-H-T2V: LatteT2V with the temporal attention replaced by fused local + Matrix Attention
(official `models/framedit_h_t2v.py`, registry name `FrameDiTHT2V-XL/256-2-1-2-concat`).

Temporal block attention, for the modulated frames X `(B, F, N, D)`:
  local  = multi-head attention over F for each token (diffusers `Attention`, param `attention`);
  global = Matrix Attention: Q, K, V = MatrixLinear(X), C column heads x R row heads, output MatrixLinear `proj_v`;
  concat: `output_linear([LN_local(local) ; LN_global(global)])` (affine LayerNorms, eps 1e-5);
  gated:  `gamma_l * sigmoid(alpha) * LN_l(local) + gamma_g * (1 - sigmoid(alpha)) * LN_g(global)`;
  sum:    `(LN_l(local) + LN_g(global)) / sqrt(2)`;  local: the local branch only.
MatrixLinear (official): `Y = U'^T X W + bias` with U `(N_in, r)`; U' = softmax(U, axis=0) for u_type
'pure-softmax' (the T2V default) or U for 'param'; bias is a full `(r, D)` matrix ('matrix') or the rank-16
product `bias_col (r, 16) @ bias_row (16, D)` ('col_row', the T2V default).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from framedit_jax.models.attention import matrix_attention, matrix_linear
from framedit_jax.models.t2v.latte_t2v import LATTE1_CONFIG, LatteT2V, LatteT2VBase
from framedit_jax.models.t2v.layers import Attention

U_TYPES = ('param', 'pure-softmax')
BIAS_TYPES = ('matrix', 'col_row')
FUSE_MODES = ('concat', 'gated', 'sum', 'local')
COL_ROW_RANK = 16  # official hard-coded inner size of the 'col_row' bias


class MatrixLinearT2V(nn.Module):
  """`(..., N_in, D_in)` -> `(..., rows, features)`: `U'^T X W + bias` (official T2V `MatrixLinear`)."""
  rows: int
  features: int
  u_type: str = 'pure-softmax'
  bias_type: str = 'col_row'
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    xavier = nn.initializers.xavier_uniform()
    u = self.param('u', xavier, (x.shape[-2], self.rows))
    w = self.param('w', xavier, (x.shape[-1], self.features))
    if self.u_type == 'pure-softmax':
      u = jax.nn.softmax(u, axis=0)
    y = matrix_linear(x.astype(self.dtype), u.astype(self.dtype), w.astype(self.dtype)).astype(jnp.float32)
    if self.bias_type == 'matrix':
      return y + self.param('bias', nn.initializers.zeros, (self.rows, self.features))
    bound = 1.0 / math.sqrt(COL_ROW_RANK)  # torch kaiming_uniform(a=sqrt(5)) on (rows, 16)
    col = self.param('bias_col', lambda k, s: jax.random.uniform(k, s, jnp.float32, -bound, bound),
                     (self.rows, COL_ROW_RANK))
    row = self.param('bias_row', nn.initializers.zeros, (COL_ROW_RANK, self.features))
    return y + col @ row


class MatrixAttentionT2V(nn.Module):
  """Matrix Attention over frames: `(B, F, N, D)` -> `(B, F, N, D)` (params linear_q/k/v, proj_v)."""
  num_col_heads: int
  num_row_heads: int
  qk_col_dim: int
  v_col_dim: int
  u_type: str = 'pure-softmax'
  bias_type: str = 'col_row'
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    n, d = x.shape[-2:]
    lin = functools.partial(MatrixLinearT2V, u_type=self.u_type, bias_type=self.bias_type, dtype=self.dtype)
    q = lin(self.qk_col_dim, d, name='linear_q')(x)
    k = lin(self.qk_col_dim, d, name='linear_k')(x)
    v = lin(self.v_col_dim, d, name='linear_v')(x)
    out, _ = matrix_attention(q.astype(self.dtype), k.astype(self.dtype), v.astype(self.dtype), self.num_col_heads,
                              self.num_row_heads)
    return lin(n, d, name='proj_v')(out)


class FusedMatrixAttentionT2V(nn.Module):
  """Local temporal attention fused with Matrix Attention (official `FusedMatrixAttention`), `(B, F, N, D)`."""
  num_heads: int
  head_dim: int
  num_col_heads: int
  qk_col_dim: int
  v_col_dim: int
  attention_bias: bool = True
  fuse_mode: str = 'concat'
  u_type: str = 'pure-softmax'
  bias_type: str = 'col_row'
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b, f, n, d = x.shape
    local = jnp.swapaxes(x, 1, 2).reshape(b * n, f, d)
    local = Attention(self.num_heads, self.head_dim, self.attention_bias, self.dtype, name='attention')(local)
    local = jnp.swapaxes(local.reshape(b, n, f, d), 1, 2)
    if self.fuse_mode == 'local':
      return local
    glob = MatrixAttentionT2V(self.num_col_heads, self.num_heads, self.qk_col_dim, self.v_col_dim, self.u_type,
                              self.bias_type, self.dtype, name='matrix_attention')(x)
    local = nn.LayerNorm(1e-5, name='norm_local')(local)
    glob = nn.LayerNorm(1e-5, name='norm_global')(glob)
    if self.fuse_mode == 'concat':
      cat = jnp.concatenate([local, glob], axis=-1).astype(self.dtype)
      return nn.Dense(d, dtype=self.dtype, kernel_init=nn.initializers.xavier_uniform(),
                      name='output_linear')(cat).astype(jnp.float32)
    if self.fuse_mode == 'sum':
      return (local + glob) / math.sqrt(2.0)
    alpha = jax.nn.sigmoid(self.param('alpha', nn.initializers.ones, (d,)))
    g_l = self.param('gamma_local', nn.initializers.constant(1e-4), (d,))
    g_g = self.param('gamma_global', nn.initializers.constant(1e-4), (d,))
    return g_l * local * alpha + g_g * glob * (1 - alpha)


class FrameDiTHT2V(LatteT2VBase):
  """FrameDiT-H-T2V. Extra attributes (official names in brackets):

  Attributes:
    num_patches: tokens per frame N (`col_dim`); U is tied to it, so H/p squared must equal it.
    num_col_heads: C (`num_col_attn_heads`).
    qk_col_dim, v_col_dim: r_qk = C * `qk_col_attn_head_dim`, r_v = C * `v_col_attn_head_dim`.
    fuse_mode: one of FUSE_MODES. u_type: one of U_TYPES. bias_type: one of BIAS_TYPES.
  Row heads are `num_attention_heads` with `attention_head_dim` channels (`num_row_attn_heads`,
  `row_attn_head_dim`).
  """
  num_patches: int = 1024
  num_col_heads: int = 512
  qk_col_dim: int = 512
  v_col_dim: int = 1024
  fuse_mode: str = 'concat'
  u_type: str = 'pure-softmax'
  bias_type: str = 'col_row'

  def temporal_attention(self, num_patches: int):
    if num_patches != self.num_patches:
      raise ValueError(f'latents give {num_patches} tokens per frame; this FrameDiT-H-T2V was built for '
                       f'num_patches={self.num_patches} (Matrix Attention U is tied to N).')
    for field, value, choices in (('fuse_mode', self.fuse_mode, FUSE_MODES), ('u_type', self.u_type, U_TYPES),
                                  ('bias_type', self.bias_type, BIAS_TYPES)):
      if value not in choices:
        raise ValueError(f'{field}={value!r}; choose one of {choices}.')
    if self.qk_col_dim % self.num_col_heads or self.v_col_dim % self.num_col_heads:
      raise ValueError(f'qk_col_dim={self.qk_col_dim} and v_col_dim={self.v_col_dim} must be multiples of '
                       f'num_col_heads={self.num_col_heads}.')
    return functools.partial(FusedMatrixAttentionT2V, self.num_attention_heads, self.attention_head_dim,
                             self.num_col_heads, self.qk_col_dim, self.v_col_dim, self.attention_bias,
                             self.fuse_mode, self.u_type, self.bias_type, self.dtype)


# Official FrameDiT_H_T2V_XL_2_1_2_concat: Latte-1 layout, N = 1024 (512x512 video), 512 column heads,
# r_qk = 512 x 1, r_v = 512 x 2, pure-softmax U, col_row bias, concat fusion.
T2V_MODELS = {
    'LatteT2V': dict(LATTE1_CONFIG),
    'FrameDiTHT2V-XL/256-2-1-2-concat': dict(LATTE1_CONFIG, num_patches=1024, num_col_heads=512, qk_col_dim=512,
                                             v_col_dim=1024, fuse_mode='concat', u_type='pure-softmax',
                                             bias_type='col_row'),
}


def get_t2v_model(name: str, **overrides: Any) -> nn.Module:
  """Builds a T2V model by official name (`LatteT2V`, `FrameDiTHT2V-XL/256-2-1-2-concat`) with overrides.

  Raises:
    ValueError: unknown name (one line listing the known names).
  """
  if name not in T2V_MODELS:
    raise ValueError(f'unknown T2V model {name!r}; choose one of {sorted(T2V_MODELS)}.')
  cfg = dict(T2V_MODELS[name], **overrides)
  if isinstance(cfg.get('dtype'), str):
    cfg['dtype'] = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}[cfg['dtype']]
  return (FrameDiTHT2V if name.startswith('FrameDiTHT2V') else LatteT2V)(**cfg)

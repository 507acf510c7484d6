"""PixArt-alpha-style pieces of the text-to-video transformers (official `models/latte_t2v.py`, diffusers).

Names follow the diffusers modules so the converters map keys one to one:
  `Attention` (to_q, to_k, to_v, to_out_0), `FeedForward` (net_0_proj, net_2; tanh-GELU, 4x),
  `CaptionProjection` (PixArtAlphaTextProjection: linear_1, tanh-GELU, linear_2),
  `AdaLayerNormSingle` (emb.timestep_embedder linear_1/linear_2, then linear -> 6D).
All norms, softmaxes and the residual stream stay float32; `dtype` is the matmul dtype.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from framedit_jax.models.embeddings import get_1d_sincos_embed, timestep_embedding

NEG_MASK = -10000.0  # official bias for dropped text tokens: (1 - mask) * -10000


def layer_norm(x: jax.Array, eps: float) -> jax.Array:
  """LayerNorm without affine parameters, float32."""
  x = x.astype(jnp.float32)
  mean = jnp.mean(x, axis=-1, keepdims=True)
  var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
  return (x - mean) * jax.lax.rsqrt(var + eps)


def pixart_pos_embed(embed_dim: int, grid_size: int, base_size: int, interpolation_scale: float) -> np.ndarray:
  """diffusers `get_2d_sincos_pos_embed` for a square grid: float32 `(grid_size**2, D)`.

  Positions are `arange(grid) / (grid / base_size) / interpolation_scale`; channels `[:D/2]` encode the column,
  `[D/2:]` the row; tokens row-major. With grid == base_size and scale 1 this is the MAE/DiT embedding.
  """
  if embed_dim % 4:
    raise ValueError(f'hidden size must be divisible by 4 for the 2-D sin-cos embedding, got {embed_dim}.')
  pos = np.arange(grid_size, dtype=np.float64) / (grid_size / base_size) / interpolation_scale
  rows, cols = np.meshgrid(pos, pos, indexing='ij')
  return np.concatenate([get_1d_sincos_embed(embed_dim // 2, cols), get_1d_sincos_embed(embed_dim // 2, rows)],
                        axis=1).astype(np.float32)


def temporal_pos_embed(embed_dim: int, length: int) -> np.ndarray:
  """Frozen `[sin | cos]` frame embedding, float32 `(length, D)` (official `get_1d_sincos_temp_embed`)."""
  return get_1d_sincos_embed(embed_dim, np.arange(length)).astype(np.float32)


def _dense(features: int, name: str, dtype: Any, use_bias: bool = True) -> nn.Dense:
  return nn.Dense(features, use_bias=use_bias, dtype=dtype, param_dtype=jnp.float32,
                  kernel_init=nn.initializers.xavier_uniform(), name=name)


class Attention(nn.Module):
  """diffusers `Attention`: multi-head softmax(q k^T / sqrt(d) + bias) v, then `to_out_0`.

  Attributes:
    num_heads, head_dim: inner width = num_heads * head_dim.
    use_bias: biases on to_q/to_k/to_v (`attention_bias`); to_out_0 always has one.
  """
  num_heads: int
  head_dim: int
  use_bias: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, context: jax.Array | None = None, bias: jax.Array | None = None) -> jax.Array:
    """x `(B, Lq, D)`, context `(B, Lk, Dc)` (None = self-attention), bias broadcastable to `(B, 1, 1, Lk)`."""
    inner = self.num_heads * self.head_dim
    context = x if context is None else context
    split = lambda a: a.reshape(a.shape[:-1] + (self.num_heads, self.head_dim))
    q = split(_dense(inner, 'to_q', self.dtype, self.use_bias)(x.astype(self.dtype)))
    k = split(_dense(inner, 'to_k', self.dtype, self.use_bias)(context.astype(self.dtype)))
    v = split(_dense(inner, 'to_v', self.dtype, self.use_bias)(context.astype(self.dtype)))
    logits = jnp.einsum('bqhd,bkhd->bhqk', q, k, preferred_element_type=jnp.float32) * self.head_dim**-0.5
    if bias is not None:
      logits = logits + bias
    weights = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
    out = jnp.einsum('bhqk,bkhd->bqhd', weights, v).reshape(x.shape[:-1] + (inner,))
    return _dense(x.shape[-1], 'to_out_0', self.dtype)(out).astype(jnp.float32)


class FeedForward(nn.Module):
  """diffusers `FeedForward(activation_fn='gelu-approximate')`: Linear(D, 4D) -> tanh-GELU -> Linear(4D, D)."""
  mult: int = 4
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    d = x.shape[-1]
    h = jax.nn.gelu(_dense(d * self.mult, 'net_0_proj', self.dtype)(x.astype(self.dtype)), approximate=True)
    return _dense(d, 'net_2', self.dtype)(h).astype(jnp.float32)


class CaptionProjection(nn.Module):
  """PixArt-alpha caption projection: T5 features `(B, L, C_text)` -> `(B, L, D)` (Linear, tanh-GELU, Linear)."""
  hidden_size: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, y: jax.Array) -> jax.Array:
    h = jax.nn.gelu(_dense(self.hidden_size, 'linear_1', self.dtype)(y.astype(self.dtype)), approximate=True)
    return _dense(self.hidden_size, 'linear_2', self.dtype)(h).astype(jnp.float32)


class AdaLayerNormSingle(nn.Module):
  """PixArt-alpha adaLN-single: one timestep MLP shared by every block.

  `t (B,)` -> `(t6 (B, 6, D), embedded_t (B, D))`: embedded_t = linear_2(SiLU(linear_1(sinusoid_256(t)))) with
  `[cos | sin]` features; t6 = linear(SiLU(embedded_t)) split into 6 rows (shift/scale/gate for attention and MLP;
  each block adds its own `scale_shift_table`).
  """
  hidden_size: int

  @nn.compact
  def __call__(self, t: jax.Array) -> tuple[jax.Array, jax.Array]:
    d = self.hidden_size
    h = timestep_embedding(t, 256)
    h = _dense(d, 'linear_1', jnp.float32)(h)
    emb = _dense(d, 'linear_2', jnp.float32)(nn.silu(h))
    t6 = nn.Dense(6 * d, kernel_init=nn.initializers.zeros, name='linear')(nn.silu(emb))
    return t6.reshape(-1, 6, d), emb


def _table(module: nn.Module, rows: int, d: int) -> jax.Array:
  init = lambda key, shape: jax.random.normal(key, shape) / np.sqrt(d)  # official randn(rows, D) / sqrt(D)
  return module.param('scale_shift_table', init, (rows, d))


class SpatialBlock(nn.Module):
  """diffusers `BasicTransformerBlock(norm_type='ada_norm_single')` on every frame.

  x `(B, F, N, D)`; self-attention over the N tokens of a frame; cross-attention (no norm, no gate, as in PixArt)
  of all tokens to the caption `(B, L, D)`; then the modulated MLP. Modulation comes once per batch element.
  """
  num_heads: int
  head_dim: int
  attention_bias: bool = True
  norm_eps: float = 1e-6
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, t6: jax.Array, context: jax.Array, context_bias: jax.Array | None) -> jax.Array:
    b, f, n, d = x.shape
    mod = (_table(self, 6, d)[None] + t6)[:, :, None, None, :]  # (B, 6, 1, 1, D)
    shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = (mod[:, i] for i in range(6))
    h = layer_norm(x, self.norm_eps) * (1 + scale_msa) + shift_msa
    h = Attention(self.num_heads, self.head_dim, self.attention_bias, self.dtype, name='attn1')(
        h.reshape(b * f, n, d)).reshape(b, f, n, d)
    x = x + gate_msa * h
    h = Attention(self.num_heads, self.head_dim, self.attention_bias, self.dtype, name='attn2')(
        x.reshape(b, f * n, d), context, context_bias)
    x = x + h.reshape(b, f, n, d)
    h = layer_norm(x, self.norm_eps) * (1 + scale_mlp) + shift_mlp
    return x + gate_mlp * FeedForward(dtype=self.dtype, name='ff')(h)


class TemporalBlock(nn.Module):
  """Official `BasicTransformerBlock_` (Latte T2V): adaLN-single self-attention over frames, then the MLP.

  x `(B, F, N, D)`; `temporal_attention` maps the modulated `(B, F, N, D)` to `(B, F, N, D)`: by default
  multi-head attention over F for each token (Latte); FrameDiT-H-T2V passes its fused matrix/local attention.
  """
  num_heads: int
  head_dim: int
  attention_bias: bool = True
  norm_eps: float = 1e-6
  dtype: Any = jnp.float32
  attn_factory: Any = None  # callable(name) -> module taking (B, F, N, D); None = Latte local attention

  @nn.compact
  def __call__(self, x: jax.Array, t6: jax.Array) -> jax.Array:
    b, f, n, d = x.shape
    mod = (_table(self, 6, d)[None] + t6)[:, :, None, None, :]
    shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = (mod[:, i] for i in range(6))
    h = layer_norm(x, self.norm_eps) * (1 + scale_msa) + shift_msa
    if self.attn_factory is None:
      h = jnp.swapaxes(h, 1, 2).reshape(b * n, f, d)
      h = Attention(self.num_heads, self.head_dim, self.attention_bias, self.dtype, name='attn1')(h)
      h = jnp.swapaxes(h.reshape(b, n, f, d), 1, 2)
    else:
      h = self.attn_factory(name='attn1')(h)
    x = x + gate_msa * h
    h = layer_norm(x, self.norm_eps) * (1 + scale_mlp) + shift_mlp
    return x + gate_mlp * FeedForward(dtype=self.dtype, name='ff')(h)

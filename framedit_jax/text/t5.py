"""T5 v1.1 encoder stack in Flax linen (the `T5EncoderModel` text encoder of Latte-1 / PixArt-alpha).

Facts (transformers `models/t5/modeling_t5.py`, T5 v1.1 = `feed_forward_proj="gated-gelu"`):
  * token embedding (vocab, d_model) shared with the decoder (unused here);
  * each block: RMSNorm -> self-attention (no 1/sqrt(d) scaling, no biases) -> residual;
    RMSNorm -> gated-GELU MLP `wo(gelu_tanh(wi_0 x) * wi_1 x)` -> residual;
  * a relative position bias (bidirectional buckets) is learnt in block 0 only and shared by every block;
  * RMSNorm `x * rsqrt(mean(x^2) + eps) * w` computed in float32, eps 1e-6; a final RMSNorm ends the stack.
T5-v1.1-XXL (Latte-1's `text_encoder/`): d_model 4096, d_kv 64, d_ff 10240, 64 heads, 24 layers, vocab 32128.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class T5Config:
  """Encoder hyper-parameters, named as in the Hugging Face `config.json` of a T5 checkpoint."""
  vocab_size: int = 32128
  d_model: int = 4096
  d_kv: int = 64
  d_ff: int = 10240
  num_layers: int = 24
  num_heads: int = 64
  relative_attention_num_buckets: int = 32
  relative_attention_max_distance: int = 128
  layer_norm_epsilon: float = 1e-6
  feed_forward_proj: str = 'gated-gelu'

  @classmethod
  def from_dict(cls, d: dict[str, Any]) -> 'T5Config':
    """Reads the fields of a Hugging Face T5 `config.json` (other keys are ignored).

    Raises:
      ValueError: `feed_forward_proj` is not 'gated-gelu' (only T5 v1.1 encoders are supported).
    """
    names = {f.name for f in dataclasses.fields(cls)}
    cfg = cls(**{k: v for k, v in d.items() if k in names})
    if cfg.feed_forward_proj != 'gated-gelu':
      raise ValueError(f"config.json feed_forward_proj={cfg.feed_forward_proj!r}: only T5 v1.1 'gated-gelu' "
                       'encoders are supported.')
    return cfg


def relative_position_bucket(relative_position: np.ndarray, num_buckets: int = 32,
                             max_distance: int = 128) -> np.ndarray:
  """Bidirectional T5 bucket of `key_pos - query_pos` (int array, any shape) -> int32 in [0, num_buckets).

  Half the buckets per direction; within a half, the first half is exact offsets and the rest log-spaced up to
  `max_distance` (transformers `T5Attention._relative_position_bucket`, bidirectional=True).
  """
  rel = np.asarray(relative_position, np.int64)
  half = num_buckets // 2
  buckets = (rel > 0).astype(np.int64) * half
  rel = np.abs(rel)
  max_exact = half // 2
  with np.errstate(divide='ignore'):
    large = max_exact + (np.log(np.maximum(rel, 1).astype(np.float32) / max_exact) /
                         math.log(max_distance / max_exact) * (half - max_exact)).astype(np.int64)
  large = np.minimum(large, half - 1)
  return (buckets + np.where(rel < max_exact, rel, large)).astype(np.int32)


class T5RMSNorm(nn.Module):
  """`x * rsqrt(mean(x^2) + eps) * weight` in float32, cast back to `dtype` (T5LayerNorm: no mean, no bias)."""
  eps: float = 1e-6
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    w = self.param('weight', nn.initializers.ones, (x.shape[-1],), jnp.float32)
    x32 = x.astype(jnp.float32)
    x32 = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
    return (x32 * w).astype(self.dtype)


class T5SelfAttention(nn.Module):
  """Multi-head self-attention with additive bias, no scaling, bias-free q/k/v/o."""
  config: T5Config
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, bias):
    """x `(B, L, d_model)`, bias `(B or 1, heads, L, L)` float32 -> `(B, L, d_model)`."""
    c = self.config
    inner = c.num_heads * c.d_kv
    dense = lambda n, f: nn.Dense(f, use_bias=False, dtype=self.dtype, name=n)
    split = lambda a: a.reshape(a.shape[:2] + (c.num_heads, c.d_kv))
    q, k, v = (split(dense(n, inner)(x)) for n in ('q', 'k', 'v'))
    scores = jnp.einsum('bqhd,bkhd->bhqk', q, k, preferred_element_type=jnp.float32) + bias
    probs = jax.nn.softmax(scores, axis=-1).astype(self.dtype)
    out = jnp.einsum('bhqk,bkhd->bqhd', probs, v).reshape(x.shape[:2] + (inner,))
    return dense('o', c.d_model)(out)


class T5Block(nn.Module):
  """RMSNorm -> self-attention -> residual; RMSNorm -> gated-GELU MLP -> residual (residuals in float32)."""
  config: T5Config
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, bias):
    c = self.config
    h = T5RMSNorm(c.layer_norm_epsilon, self.dtype, name='attn_norm')(x)
    x = x + T5SelfAttention(c, self.dtype, name='attn')(h, bias).astype(x.dtype)
    h = T5RMSNorm(c.layer_norm_epsilon, self.dtype, name='mlp_norm')(x)
    gate = nn.Dense(c.d_ff, use_bias=False, dtype=self.dtype, name='wi_0')(h)
    up = nn.Dense(c.d_ff, use_bias=False, dtype=self.dtype, name='wi_1')(h)
    h = jax.nn.gelu(gate, approximate=True) * up
    return x + nn.Dense(c.d_model, use_bias=False, dtype=self.dtype, name='wo')(h).astype(x.dtype)


class T5Encoder(nn.Module):
  """T5 v1.1 encoder: token ids -> last hidden states (transformers `T5EncoderModel(...).last_hidden_state`).

  Attributes:
    config: `T5Config`.
    dtype: compute dtype of matmuls (bfloat16 for the 4.7B XXL encoder); norms, softmax and the residual stream
      stay float32.
  """
  config: T5Config
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, input_ids: jax.Array, attention_mask: jax.Array | None = None) -> jax.Array:
    """Encodes token ids.

    Args:
      input_ids: int `(B, L)` token ids in [0, vocab_size).
      attention_mask: optional `(B, L)`, 1 = real token, 0 = padding (padding keys get a -inf-like bias).

    Returns:
      float32 `(B, L, d_model)`. Rows at padded positions are computed but meaningless, as in transformers.
    """
    c = self.config
    length = input_ids.shape[1]
    x = nn.Embed(c.vocab_size, c.d_model, name='shared')(input_ids).astype(jnp.float32)
    pos = np.arange(length)
    buckets = relative_position_bucket(pos[None, :] - pos[:, None], c.relative_attention_num_buckets,
                                       c.relative_attention_max_distance)  # (Lq, Lk)
    table = self.param('relative_attention_bias', nn.initializers.normal(1.0),
                       (c.relative_attention_num_buckets, c.num_heads), jnp.float32)
    bias = jnp.transpose(table[buckets], (2, 0, 1))[None]  # (1, heads, Lq, Lk)
    if attention_mask is not None:
      keep = jnp.asarray(attention_mask).astype(bool)[:, None, None, :]
      bias = bias + jnp.where(keep, 0.0, jnp.finfo(jnp.float32).min)
    for i in range(c.num_layers):
      x = T5Block(c, self.dtype, name=f'block_{i}')(x, bias)
    return T5RMSNorm(c.layer_norm_epsilon, jnp.float32, name='final_norm')(x)

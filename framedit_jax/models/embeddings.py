"""Input embeddings: patches, fixed sin-cos positions, timesteps and class labels.

Facts from the official code ( `models/latte.py`, `models/framedit_g.py`):
  * spatial position embedding: frozen 2-D sin-cos (MAE), first D/2 channels encode the column;
  * temporal position embedding: frozen 1-D `[sin | cos]`;
  * timestep: 256-d `[cos | sin]` sinusoid -> Linear -> SiLU -> Linear;
  * class label: `num_classes + 1` rows (last = null label), dropped to null with p = `dropout_prob` in training.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def get_1d_sincos_embed(embed_dim: int, pos: np.ndarray) -> np.ndarray:
  """Fixed 1-D sin-cos embedding (MAE `get_1d_sincos_pos_embed_from_grid`).

  Args:
    embed_dim: even output width D.
    pos: positions, any shape (M values once flattened).

  Returns:
    float64 `(M, D)`: `[sin(pos * w) | cos(pos * w)]` with `w_i = 10000^(-i / (D/2))`, i < D/2.
  """
  if embed_dim % 2:
    raise ValueError(f'embed_dim must be even for a sin-cos embedding, got {embed_dim}.')
  omega = np.arange(embed_dim // 2, dtype=np.float64) / (embed_dim / 2.0)
  omega = 1.0 / 10000**omega
  out = np.asarray(pos, np.float64).reshape(-1)[:, None] * omega[None]
  return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def get_2d_sincos_pos_embed(embed_dim: int, grid_size: int) -> np.ndarray:
  """Fixed 2-D sin-cos embedding of a `grid_size x grid_size` patch grid, float32 `(grid_size**2, D)`.

  Token n = row * grid_size + col (row-major, like a flattened conv output). Channels `[:D/2]` encode the column
  and `[D/2:]` the row (the official grid is `meshgrid(w, h)`).
  """
  if embed_dim % 4:
    raise ValueError(f'hidden_size must be divisible by 4 for the 2-D sin-cos embedding, got {embed_dim}.')
  rows, cols = np.meshgrid(np.arange(grid_size, dtype=np.float32), np.arange(grid_size, dtype=np.float32),
                           indexing='ij')
  emb_col = get_1d_sincos_embed(embed_dim // 2, cols)
  emb_row = get_1d_sincos_embed(embed_dim // 2, rows)
  return np.concatenate([emb_col, emb_row], axis=1).astype(np.float32)


def get_1d_sincos_temp_embed(embed_dim: int, length: int) -> np.ndarray:
  """Fixed temporal embedding, float32 `(length, D)` (official `get_1d_sincos_temp_embed`)."""
  return get_1d_sincos_embed(embed_dim, np.arange(length)).astype(np.float32)


_TWO_PI = 2.0 * math.pi
_TWO_PI_1 = np.float32(6.28125)  # 8 significant bits: k * _TWO_PI_1 is exact for |k| < 2^16
_TWO_PI_2 = np.float32(_TWO_PI - 6.28125)
_TWO_PI_3 = np.float32(_TWO_PI - 6.28125 - float(_TWO_PI_2))


def reduce_mod_2pi(x: jax.Array) -> jax.Array:
  """float32 `x - 2 pi k` with k = round(x / 2 pi) (Cody-Waite, three-part 2 pi), error ~1e-8 for |x| < 1e4.

  XLA's CPU sin/cos lose ~3e-5 at arguments near 1000 (timestep 999 times frequency 1); reducing first keeps the
  timestep features within float32 rounding of the official (torch) values.
  """
  k = jnp.round(x * np.float32(1.0 / _TWO_PI))
  return ((x - k * _TWO_PI_1) - k * _TWO_PI_2) - k * _TWO_PI_3


def timestep_embedding(t: jax.Array, dim: int = 256, max_period: float = 10000.0) -> jax.Array:
  """Sinusoidal timestep features `[cos | sin]` (GLIDE / DiT), computed in float32.

  Args:
    t: `(B,)` timesteps (int 0..999 or float).
    dim: feature width.
    max_period: lowest frequency is `1 / max_period`.

  Returns:
    float32 `(B, dim)`.
  """
  half = dim // 2
  # Exponent in float32 as the official code does, exp correctly rounded (float64 on the host): a constant that
  # does not depend on the device's exp, and matches torch's float32 table in all but ~2 of 128 entries.
  expo = (np.float32(-math.log(max_period)) * np.arange(half, dtype=np.float32) / np.float32(half))
  freqs = jnp.asarray(np.exp(expo.astype(np.float64)).astype(np.float32))
  args = reduce_mod_2pi(t.astype(jnp.float32)[:, None] * freqs[None])
  emb = jnp.concatenate([jnp.cos(args), jnp.sin(args)], axis=-1)
  if dim % 2:
    emb = jnp.concatenate([emb, jnp.zeros_like(emb[:, :1])], axis=-1)
  return emb


def patch_kernel_init(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
  """Xavier-uniform on the flattened `(C*p*p, D)` view of a `(p, p, C, D)` conv kernel (official init)."""
  fan_in = int(np.prod(shape[:-1]))
  fan_out = shape[-1]
  bound = math.sqrt(6.0 / (fan_in + fan_out))
  return jax.random.uniform(key, shape, dtype, -bound, bound)


class PatchEmbed(nn.Module):
  """Per-frame Conv(p x p, stride p): `(B, T, H, W, C)` -> `(B, T, N, D)`, N = (H/p)(W/p), row-major tokens.

  Param `proj/kernel` is `(p, p, C, D)` (official `x_embedder.proj.weight` is `(D, C, p, p)`).
  """
  hidden_size: int
  patch_size: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b, t, h, w, c = x.shape
    p = self.patch_size
    if h % p or w % p:
      raise ValueError(f'input H, W = {h}, {w} must be divisible by patch_size = {p}.')
    y = nn.Conv(self.hidden_size, (p, p), strides=(p, p), padding='VALID', dtype=self.dtype,
                param_dtype=jnp.float32, kernel_init=patch_kernel_init, bias_init=nn.initializers.zeros,
                name='proj')(x.reshape(b * t, h, w, c).astype(self.dtype))
    return y.reshape(b, t, (h // p) * (w // p), self.hidden_size).astype(jnp.float32)


class TimestepEmbedder(nn.Module):
  """`t (B,)` -> float32 `(B, D)`: sinusoid(256) -> `mlp_0` -> SiLU -> `mlp_2` (weights N(0, 0.02), zero bias)."""
  hidden_size: int
  frequency_embedding_size: int = 256

  @nn.compact
  def __call__(self, t: jax.Array) -> jax.Array:
    init = nn.initializers.normal(0.02)
    h = timestep_embedding(t, self.frequency_embedding_size)
    h = nn.Dense(self.hidden_size, kernel_init=init, name='mlp_0')(h)
    h = nn.silu(h)
    return nn.Dense(self.hidden_size, kernel_init=init, name='mlp_2')(h)


class LabelEmbedder(nn.Module):
  """Class labels -> float32 `(..., D)` with label dropout for classifier-free guidance.

  The table has `num_classes + (dropout_prob > 0)` rows (official); row `num_classes` is the null label.
  With `train=True` each label is replaced by the null label with probability `dropout_prob`, drawn from the
  'dropout' rng stream.
  """
  num_classes: int
  hidden_size: int
  dropout_prob: float = 0.1

  @nn.compact
  def __call__(self, labels: jax.Array, train: bool = False) -> jax.Array:
    rows = self.num_classes + int(self.dropout_prob > 0)
    labels = labels.astype(jnp.int32)
    if train and self.dropout_prob > 0:
      drop = jax.random.uniform(self.make_rng('dropout'), labels.shape) < self.dropout_prob
      labels = jnp.where(drop, self.num_classes, labels)
    table = nn.Embed(rows, self.hidden_size, embedding_init=nn.initializers.normal(0.02), name='embedding_table')
    return table(labels)

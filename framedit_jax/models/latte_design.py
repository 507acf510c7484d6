"""Latte's design space (Latte §3.2-3.3, ablations §4.2) as one configurable video DiT.

Options (the paper's best, and the official Latte / FrameDiT default, is variant 1, uniform, adaln, absolute):
  variant 1  interleaved: even blocks spatial (attention over the N tokens of a frame), odd blocks temporal
             (attention over the T frames of a token); the temporal embedding is added after block 0.
  variant 2  late fusion: the first depth/2 blocks spatial, the last depth/2 temporal.
  variant 3  one block = spatial attention, then temporal attention, then the MLP; depth/2 such blocks.
  variant 4  one attention per block whose first num_heads/2 heads are spatial and the others temporal
             (one qkv / proj for all heads); depth blocks.
  patch_embed 'uniform' (per-frame p x p patches) | 'tubelet' (compression: (s, p, p) patches, T/s token frames,
             decoded by a (s, p, p) stride-(s, p, p) 3D transposed conv).
  conditioning 'adaln' (S-AdaLN: adaLN-Zero scale/shift/gate from c = t_emb + y_emb) | 'tokens' (all tokens: c
             is one extra token prepended to every attention sequence; blocks are pre-LN without modulation).
  temporal_pos 'absolute' (frozen 1-D sin-cos added once) | 'rope' (rotary embedding of the frame index on the
             temporal queries and keys).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from framedit_jax.models.attention import dot_product_attention
from framedit_jax.models.backbone import unpatchify
from framedit_jax.models.blocks import Mlp, layer_norm, modulate, remat_policy, unrolled_only
from framedit_jax.models.embeddings import (LabelEmbedder, TimestepEmbedder, get_1d_sincos_temp_embed,
                                            get_2d_sincos_pos_embed, patch_kernel_init)

VARIANTS = (1, 2, 3, 4)
PATCH_EMBEDS = ('uniform', 'tubelet')
CONDITIONINGS = ('adaln', 'tokens')
TEMPORAL_POS = ('absolute', 'rope')


def rope(x: jax.Array, positions: jax.Array, base: float = 10000.0) -> jax.Array:
  """Rotary position embedding (RoFormer) on `(..., L, H, d)` with `positions (L,)`; pairs (i, i + d/2) rotate
  by `positions * base^(-2i/d)`. Scores <rope(q, m), rope(k, n)> depend on m - n only."""
  d = x.shape[-1]
  if d % 2:
    raise ValueError(f'RoPE needs an even head dim, got {d}.')
  inv = base**(-np.arange(d // 2, dtype=np.float32) * 2.0 / d)
  ang = positions.astype(jnp.float32)[:, None] * inv[None]  # (L, d/2)
  cos, sin = jnp.cos(ang)[:, None, :], jnp.sin(ang)[:, None, :]  # (L, 1, d/2)
  x1, x2 = x[..., :d // 2].astype(jnp.float32), x[..., d // 2:].astype(jnp.float32)
  return jnp.concatenate([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1).astype(x.dtype)


def _heads(qkv: jax.Array, num_heads: int) -> tuple[jax.Array, jax.Array, jax.Array]:
  s, l, d3 = qkv.shape
  qkv = qkv.reshape(s, l, 3, num_heads, d3 // 3 // num_heads)
  return qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]


def _attend(q, k, v, cond, positions, kernel):
  """Attention over sequences `(S, L, h, d)`; `cond` `(S, 1, h, d)` triples prepended (all-tokens conditioning);
  RoPE on the L sequence tokens when positions is given (the condition token is not rotated)."""
  if positions is not None:
    q, k = rope(q, positions), rope(k, positions)
  if cond is not None:
    cq, ck, cv = cond
    q, k, v = (jnp.concatenate([c, a], axis=1) for c, a in ((cq, q), (ck, k), (cv, v)))
  out = dot_product_attention(q, k, v, kernel)
  return out[:, 1:] if cond is not None else out


class DesignAttention(nn.Module):
  """Multi-head attention over frames ('spatial'), frames' tokens over time ('temporal') or both with the heads
  split in halves ('split', variant 4): `(B, T, N, D)` -> `(B, T, N, D)`. Params `qkv`, `proj` (official names).

  `c`: `(B, D)` condition token (all-tokens conditioning) or None. `rope_temporal`: rotary frame positions.
  """
  num_heads: int
  kind: str = 'spatial'
  rope_temporal: bool = False
  dtype: Any = jnp.float32
  attention_kernel: str = 'einsum'

  @nn.compact
  def __call__(self, x: jax.Array, c: jax.Array | None = None) -> jax.Array:
    b, t, n, d = x.shape
    dense = lambda k, name: nn.Dense(k, dtype=self.dtype, kernel_init=nn.initializers.xavier_uniform(), name=name)
    qkv_layer = dense(3 * d, 'qkv')
    qkv = qkv_layer(x.astype(self.dtype))  # (B, T, N, 3D)
    cqkv = None if c is None else qkv_layer(c.astype(self.dtype))  # (B, 3D)
    h = self.num_heads

    def run(seq, cond, reps, positions, heads):
      q, k, v = _heads(seq, h)
      q, k, v = (a[..., heads, :] for a in (q, k, v))
      cond_t = None
      if cond is not None:
        cq, ck, cv = _heads(jnp.repeat(cond, reps, axis=0)[:, None], h)
        cond_t = tuple(a[..., heads, :] for a in (cq, ck, cv))
      return _attend(q, k, v, cond_t, positions, self.attention_kernel)

    pos = jnp.arange(t) if self.rope_temporal else None
    spatial_in = qkv.reshape(b * t, n, 3 * d)
    temporal_in = jnp.transpose(qkv, (0, 2, 1, 3)).reshape(b * n, t, 3 * d)
    all_heads = slice(0, h)
    if self.kind == 'spatial':
      out = run(spatial_in, cqkv, t, None, all_heads).reshape(b, t, n, d)
    elif self.kind == 'temporal':
      out = run(temporal_in, cqkv, n, pos, all_heads).reshape(b, n, t, d).transpose(0, 2, 1, 3)
    elif self.kind == 'split':
      half = h // 2
      s_out = run(spatial_in, cqkv, t, None, slice(0, half)).reshape(b, t, n, half, -1)
      t_out = run(temporal_in, cqkv, n, pos, slice(half, h)).reshape(b, n, t, h - half, -1).transpose(0, 2, 1, 3, 4)
      out = jnp.concatenate([s_out, t_out], axis=3).reshape(b, t, n, d)
    else:
      raise ValueError(f"attention kind must be 'spatial', 'temporal' or 'split', got {self.kind!r}.")
    return dense(d, 'proj')(out)


class DesignBlock(nn.Module):
  """A block of `kinds` attention sublayers then an MLP, each `x += gate * f(modulate(LN(x)))` (adaln) or
  `x += f(LN(x))` (tokens; the condition enters as an extra attention token). `(B, T, N, D)`, c `(B, D)`."""
  hidden_size: int
  num_heads: int
  kinds: tuple[str, ...]
  conditioning: str = 'adaln'
  rope_temporal: bool = False
  mlp_ratio: float = 4.0
  dtype: Any = jnp.float32
  attention_kernel: str = 'einsum'

  @nn.compact
  def __call__(self, x: jax.Array, c: jax.Array) -> jax.Array:
    d, k = self.hidden_size, len(self.kinds) + 1
    adaln = self.conditioning == 'adaln'
    if adaln:
      mod = nn.Dense(3 * k * d, kernel_init=nn.initializers.zeros, name='adaLN_modulation')(nn.silu(c))
      mod = jnp.split(mod[:, None, None, :], 3 * k, axis=-1)
    for j, kind in enumerate(self.kinds):
      attn = DesignAttention(self.num_heads, kind, self.rope_temporal, self.dtype, self.attention_kernel,
                             name=f'attn_{kind}' if len(self.kinds) > 1 else 'attn')
      if adaln:
        shift, scale, gate = mod[3 * j:3 * j + 3]
        x = x + gate * attn(modulate(layer_norm(x), shift, scale).astype(self.dtype)).astype(jnp.float32)
      else:
        x = x + attn(layer_norm(x).astype(self.dtype), c).astype(jnp.float32)
    mlp = Mlp(int(d * self.mlp_ratio), self.dtype, name='mlp')
    if adaln:
      shift, scale, gate = mod[-3:]
      return x + gate * mlp(modulate(layer_norm(x), shift, scale).astype(self.dtype)).astype(jnp.float32)
    return x + mlp(layer_norm(x).astype(self.dtype)).astype(jnp.float32)


def block_kinds(variant: int, depth: int) -> list[tuple[str, ...]]:
  """The attention kinds of each block: V1 alternating, V2 spatial then temporal halves, V3 depth/2 blocks of
  (spatial, temporal), V4 depth blocks of 'split' heads."""
  if variant == 1:
    return [('spatial',) if i % 2 == 0 else ('temporal',) for i in range(depth)]
  if variant == 2:
    return [('spatial',) if i < depth // 2 else ('temporal',) for i in range(depth)]
  if variant == 3:
    return [('spatial', 'temporal')] * (depth // 2)
  if variant == 4:
    return [('split',)] * depth
  raise ValueError(f'variant must be one of {VARIANTS}, got {variant!r}.')


class LatteDesign(nn.Module):
  """Latte design-space backbone. Call like `LatteStyleDiT`: `apply({'params': p}, x (B, T, H, W, C), t (B,), y=None,
  train=False)` -> float32 `(B, T, H, W, C_out)`. Raises ValueError (one line) for bad options or shapes."""
  variant: int = 1
  patch_embed: str = 'uniform'
  tubelet_size: int = 2
  conditioning: str = 'adaln'
  temporal_pos: str = 'absolute'
  input_size: int = 32
  patch_size: int = 2
  in_channels: int = 4
  hidden_size: int = 384
  depth: int = 12
  num_heads: int = 6
  mlp_ratio: float = 4.0
  num_frames: int = 16
  num_classes: int = 0
  class_dropout_prob: float = 0.1
  learn_sigma: bool = True
  dtype: Any = jnp.float32
  attention_kernel: str = 'einsum'
  remat: bool = False
  remat_policy: str = 'none'
  use_image_num: int = 0
  frame_axis: str | None = None

  temporal = 'local'

  @property
  def out_channels(self) -> int:
    return 2 * self.in_channels if self.learn_sigma else self.in_channels

  def _check(self, x: jax.Array) -> None:
    problems = []
    if self.variant not in VARIANTS:
      problems.append(f'variant={self.variant!r} not in {VARIANTS}')
    if self.patch_embed not in PATCH_EMBEDS:
      problems.append(f'patch_embed={self.patch_embed!r} not in {PATCH_EMBEDS}')
    if self.conditioning not in CONDITIONINGS:
      problems.append(f'conditioning={self.conditioning!r} not in {CONDITIONINGS}')
    if self.temporal_pos not in TEMPORAL_POS:
      problems.append(f'temporal_pos={self.temporal_pos!r} not in {TEMPORAL_POS}')
    if self.patch_embed == 'tubelet' and self.num_frames % self.tubelet_size:
      problems.append(f'num_frames={self.num_frames} not divisible by tubelet_size={self.tubelet_size}')
    if self.variant in (2, 3) and self.depth % 2:
      problems.append(f'variant {self.variant} needs an even depth, got {self.depth}')
    if self.use_image_num or self.frame_axis is not None:
      problems.append('use_image_num / frame parallelism are not supported by the design-space models')
    if x.shape[1:] != (self.num_frames, self.input_size, self.input_size, self.in_channels):
      problems.append(f'x has shape {x.shape}, expected (B, {self.num_frames}, {self.input_size}, '
                      f'{self.input_size}, {self.in_channels})')
    if problems:
      raise ValueError('LatteDesign: ' + '; '.join(problems) + '.')

  @nn.compact
  def __call__(self, x: jax.Array, t: jax.Array, y: jax.Array | None = None, train: bool = False) -> jax.Array:
    self._check(x)
    b, d, p = x.shape[0], self.hidden_size, self.patch_size
    grid = self.input_size // p
    s = self.tubelet_size if self.patch_embed == 'tubelet' else 1
    tt = self.num_frames // s
    h = nn.Conv(d, (s, p, p), strides=(s, p, p), padding='VALID', dtype=self.dtype, kernel_init=patch_kernel_init,
                name='x_embedder')(x.astype(self.dtype)).astype(jnp.float32)  # (B, T/s, h, w, D)
    h = h.reshape(b, tt, grid * grid, d) + jnp.asarray(get_2d_sincos_pos_embed(d, grid))[None, None]
    c = TimestepEmbedder(d, name='t_embedder')(t)
    if self.num_classes > 0:
      if y is None:
        raise ValueError(f'y (class labels) is required: num_classes={self.num_classes}.')
      c = c + LabelEmbedder(self.num_classes, d, self.class_dropout_prob, name='y_embedder')(y, train)
    temp = jnp.asarray(get_1d_sincos_temp_embed(d, tt))[None, :, None, :]
    absolute = self.temporal_pos == 'absolute'
    kinds = block_kinds(self.variant, self.depth)
    if absolute and self.variant in (3, 4):
      h = h + temp  # every block mixes time: add it at the input
    policy = remat_policy(self.remat_policy, self.remat)
    block_cls = DesignBlock if policy is None else nn.remat(DesignBlock, policy=policy)
    for i, kk in enumerate(kinds):
      if absolute and self.variant in (1, 2) and kk == ('temporal',) and (i == 0 or kinds[i - 1] != kk):
        h = h + temp  # once, before the first temporal block (V1: after block 0, as the official Latte)
      h = block_cls(d, self.num_heads, kk, self.conditioning, not absolute, self.mlp_ratio, self.dtype,
                    self.attention_kernel, name=f'blocks_{i}')(h, c)
    if self.conditioning == 'adaln':
      mod = nn.Dense(2 * d, kernel_init=nn.initializers.zeros, name='final_adaLN')(nn.silu(c))
      shift, scale = jnp.split(mod[:, None, None, :], 2, axis=-1)
      h = modulate(layer_norm(h), shift, scale)
    else:
      h = layer_norm(h)
    h = h.astype(self.dtype)
    if self.patch_embed == 'tubelet':
      h = h.reshape(b, tt, grid, grid, d)
      out = nn.ConvTranspose(self.out_channels, (s, p, p), strides=(s, p, p), padding='VALID', dtype=self.dtype,
                             kernel_init=nn.initializers.zeros, name='final_layer')(h)
      return out.astype(jnp.float32)  # (B, T, H, W, C_out)
    out = nn.Dense(p * p * self.out_channels, dtype=self.dtype, kernel_init=nn.initializers.zeros,
                   name='final_layer')(h)
    return unpatchify(out.astype(jnp.float32), (grid, grid), p, self.out_channels)


_SIZES = {'S': (12, 384, 6), 'B': (12, 768, 12), 'L': (24, 1024, 16), 'XL': (28, 1152, 16)}


def list_latte_designs() -> list[str]:
  """'LatteV{1,2,3,4}-{S,B,L,XL}/{2,4,8}' (LatteV1 = Latte-*/p built with this module's options)."""
  return sorted(f'LatteV{v}-{s}/{p}' for v in VARIANTS for s in _SIZES for p in (2, 4, 8))


def latte_design_config(name: str) -> dict[str, Any]:
  """variant, depth, hidden_size, num_heads, patch_size of a 'LatteV<k>-<size>/<p>' name (KeyError if unknown)."""
  if name not in list_latte_designs():
    raise KeyError(f'Unknown Latte design name {name!r}; use LatteV{{1,2,3,4}}-{{S,B,L,XL}}/{{2,4,8}}.')
  head, p = name.split('/')
  variant, size = head[len('LatteV'):].split('-')
  depth, hidden, heads = _SIZES[size]
  return dict(variant=int(variant), depth=depth, hidden_size=hidden, num_heads=heads, patch_size=int(p))


def get_latte_design(name: str, **overrides: Any) -> LatteDesign:
  """`LatteDesign` for a name, with overrides patch_embed, tubelet_size, conditioning, temporal_pos and the usual
  `get_model` ones (input_size, num_frames, in_channels, num_classes, learn_sigma, dtype, depth, ...).

  Raises:
    KeyError: unknown name. TypeError: unknown override.
  """
  cfg = latte_design_config(name)
  overrides = unrolled_only(name, overrides)  # scan_blocks / cpu_kernels: blocks run unrolled here
  fields = set(LatteDesign.__dataclass_fields__) - {'parent', 'name'}
  bad = sorted(set(overrides) - fields)
  if bad:
    raise TypeError(f'get_latte_design: unknown override(s) {bad}; allowed: {", ".join(sorted(fields))}.')
  cfg.update(overrides)
  if isinstance(cfg.get('dtype'), str):
    cfg['dtype'] = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16, 'float16': jnp.float16}[cfg['dtype']]
  return LatteDesign(**cfg)

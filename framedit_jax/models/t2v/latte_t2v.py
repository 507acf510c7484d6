"""LatteT2V (Latte-1, arXiv 2401.03048 §4.5) in Flax: PixArt-alpha spatial blocks with cross-attention to T5
tokens, interleaved with adaLN-single temporal blocks (official `models/latte_t2v.py`, diffusers-format
`transformer/config.json`).

    model = LatteT2V(**LATTE1_CONFIG)                          # Latte-1: 28 + 28 blocks, D = 1152, 512x512
    out = model.apply({'params': p}, x, t, text, text_mask)    # (B, F, H, W, C) -> (B, F, H, W, out_channels)
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from framedit_jax.models.blocks import remat_policy
from framedit_jax.models.embeddings import PatchEmbed
from framedit_jax.models.t2v.layers import (NEG_MASK, AdaLayerNormSingle, CaptionProjection, SpatialBlock,
                                            TemporalBlock, layer_norm, pixart_pos_embed, temporal_pos_embed)

# maxin-cn/Latte-1 transformer/config.json (the fields this module uses).
LATTE1_CONFIG = dict(num_attention_heads=16, attention_head_dim=72, in_channels=4, out_channels=8, num_layers=28,
                     cross_attention_dim=1152, attention_bias=True, sample_size=64, patch_size=2, norm_eps=1e-6,
                     caption_channels=4096, video_length=16)
_IGNORED_CONFIG = {'_class_name', '_diffusers_version', '_name_or_path', 'activation_fn', 'norm_type',
                   'norm_elementwise_affine', 'num_embeds_ada_norm', 'dropout', 'norm_num_groups', 'upcast_attention',
                   'use_linear_projection', 'only_cross_attention', 'double_self_attention', 'attention_type',
                   'num_vector_embeds'}
_REQUIRED_CONFIG = {'activation_fn': 'gelu-approximate', 'norm_type': 'ada_norm_single',
                    'norm_elementwise_affine': False}


def config_from_diffusers(cfg: Mapping[str, Any]) -> dict[str, Any]:
  """Module kwargs from a diffusers `transformer/config.json` dict.

  Raises:
    ValueError: a setting other than Latte-1's PixArt-alpha layout (activation, norm type, affine norms, additional
      size conditions at sample_size 128), or an unknown field.
  """
  for key, want in _REQUIRED_CONFIG.items():
    if key in cfg and cfg[key] != want:
      raise ValueError(f'transformer config {key}={cfg[key]!r} is not supported; LatteT2V needs {want!r}.')
  if cfg.get('sample_size') == 128:
    raise ValueError('transformer config sample_size=128 turns on PixArt size conditions, which are not supported.')
  known = set(LATTE1_CONFIG) | _IGNORED_CONFIG
  unknown = sorted(set(cfg) - known)
  if unknown:
    raise ValueError(f'transformer config has unsupported fields {unknown}.')
  return {k: v for k, v in cfg.items() if k in LATTE1_CONFIG}


def text_bias(encoder_attention_mask: jax.Array | None) -> jax.Array | None:
  """`(B, L)` keep-mask (1 keep, 0 drop) -> additive bias `(B, 1, 1, L)`: 0 or -10000 (official)."""
  if encoder_attention_mask is None:
    return None
  m = jnp.asarray(encoder_attention_mask).astype(jnp.float32)
  return ((1.0 - m) * NEG_MASK)[:, None, None, :]


def unpatchify(x: jax.Array, grid: int, patch_size: int, channels: int) -> jax.Array:
  """`(B, F, grid*grid, p*p*C)` -> `(B, F, grid*p, grid*p, C)` (official 'nhwpqc->nchpwq', channels last)."""
  b, f = x.shape[:2]
  x = x.reshape(b, f, grid, grid, patch_size, patch_size, channels)
  x = jnp.transpose(x, (0, 1, 2, 4, 3, 5, 6))
  return x.reshape(b, f, grid * patch_size, grid * patch_size, channels)


class LatteT2VBase(nn.Module):
  """Shared body of LatteT2V and FrameDiT-H-T2V. Field names are the diffusers config names.

  Attributes:
    num_attention_heads, attention_head_dim: D = heads * head_dim.
    in_channels, out_channels: latent channels in and out (out = 2 in for learn_sigma).
    num_layers: spatial blocks = temporal blocks = num_layers.
    cross_attention_dim: must equal D (the caption is projected to D first).
    attention_bias: biases on to_q/to_k/to_v.
    sample_size: latent size the position embedding is built for (`interpolation_scale = max(sample_size//64, 1)`).
    patch_size: p.
    norm_eps: eps of the non-affine LayerNorms inside blocks (the final norm uses 1e-6).
    caption_channels: T5 width (4096 for T5-XXL).
    video_length: frames the temporal embedding is built for; inputs with F > 1 must have F = video_length.
    dtype: matmul dtype ('float32' or 'bfloat16'); norms/softmax/residuals stay float32.
    remat_policy: rematerialisation of each spatial and temporal block ('none', 'full', 'dots_saveable',
      'dots_with_no_batch_dims_saveable', ...; `blocks.remat_policy`); values and parameter names do not change.
  """
  num_attention_heads: int = 16
  attention_head_dim: int = 72
  in_channels: int = 4
  out_channels: int = 8
  num_layers: int = 28
  cross_attention_dim: int = 1152
  attention_bias: bool = True
  sample_size: int = 64
  patch_size: int = 2
  norm_eps: float = 1e-6
  caption_channels: int = 4096
  video_length: int = 16
  dtype: Any = jnp.float32
  remat_policy: str = 'none'

  def temporal_attention(self, num_patches: int) -> Callable[..., nn.Module] | None:
    """Factory for the temporal blocks' attention (None = Latte local attention over frames)."""
    return None

  @nn.compact
  def __call__(self, x: jax.Array, t: jax.Array, encoder_hidden_states: jax.Array,
               encoder_attention_mask: jax.Array | None = None, enable_temporal_attentions: bool = True) -> jax.Array:
    """Predicts noise (and variance) for a latent video.

    Args:
      x: `(B, F, H, W, in_channels)` noisy latents, H = W.
      t: `(B,)` timesteps 0..999.
      encoder_hidden_states: `(B, L, caption_channels)` T5 token embeddings.
      encoder_attention_mask: optional `(B, L)`, 1 keep / 0 drop (bias -10000 on dropped tokens).
      enable_temporal_attentions: False skips the temporal blocks (Latte-T2V "V0").

    Returns:
      float32 `(B, F, H, W, out_channels)`.

    Raises:
      ValueError: H != W, H not divisible by p, text width != caption_channels, or F > 1 with F != video_length.
    """
    b, f, h, w, c = x.shape
    d = self.num_attention_heads * self.attention_head_dim
    p = self.patch_size
    if h != w or h % p:
      raise ValueError(f'latents must be square with side divisible by patch_size={p}; got H, W = {h}, {w}.')
    if c != self.in_channels:
      raise ValueError(f'latents have {c} channels; in_channels is {self.in_channels}.')
    if encoder_hidden_states.shape[-1] != self.caption_channels:
      raise ValueError(f'text embeddings have width {encoder_hidden_states.shape[-1]}; caption_channels is '
                       f'{self.caption_channels}.')
    if f > 1 and f != self.video_length:
      raise ValueError(f'input has {f} frames; the temporal embedding is built for video_length={self.video_length}.')
    if self.cross_attention_dim != d:
      raise ValueError(f'cross_attention_dim={self.cross_attention_dim} must equal heads*head_dim={d}.')
    grid = h // p
    hs = PatchEmbed(d, p, self.dtype, name='pos_embed')(x)  # (B, F, N, D)
    base = self.sample_size // p
    hs = hs + jnp.asarray(pixart_pos_embed(d, grid, base, max(self.sample_size // 64, 1)))
    t6, emb = AdaLayerNormSingle(d, name='adaln_single')(t)
    context = CaptionProjection(d, self.dtype, name='caption_projection')(encoder_hidden_states)
    bias = text_bias(encoder_attention_mask)
    attn_factory = self.temporal_attention(grid * grid)
    policy = remat_policy(self.remat_policy)
    spatial_cls, temporal_cls = ((SpatialBlock, TemporalBlock) if policy is None else
                                 (nn.remat(SpatialBlock, policy=policy), nn.remat(TemporalBlock, policy=policy)))
    for i in range(self.num_layers):
      hs = spatial_cls(self.num_attention_heads, self.attention_head_dim, self.attention_bias, self.norm_eps,
                        self.dtype, name=f'transformer_blocks_{i}')(hs, t6, context, bias)
      if enable_temporal_attentions:
        if i == 0 and f > 1:
          hs = hs + jnp.asarray(temporal_pos_embed(d, self.video_length))[None, :, None, :]
        hs = temporal_cls(self.num_attention_heads, self.attention_head_dim, self.attention_bias, self.norm_eps,
                           self.dtype, attn_factory, name=f'temporal_transformer_blocks_{i}')(hs, t6)
    table = self.param('scale_shift_table', lambda k, s: jax.random.normal(k, s) / np.sqrt(d), (2, d))
    shift, scale = (table[None] + emb[:, None])[:, :, None, None, :].swapaxes(0, 1)  # each (B, 1, 1, D)
    hs = layer_norm(hs, 1e-6) * (1 + scale) + shift
    hs = nn.Dense(p * p * self.out_channels, dtype=self.dtype, kernel_init=nn.initializers.zeros,
                  name='proj_out')(hs.astype(self.dtype)).astype(jnp.float32)
    return unpatchify(hs, grid, p, self.out_channels)


class LatteT2V(LatteT2VBase):
  """Latte-1 text-to-video transformer: temporal blocks are plain multi-head attention over frames."""

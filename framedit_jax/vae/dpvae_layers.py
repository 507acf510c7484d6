"""Pseudo-3D layers of the DP-VAE's residual encoder E_r and 3D decoder D (VideoDiT, ICLR submission, §A.1).

VideoDiT builds E_r and D as "a trainable copy of the pre-trained 2D VAE" with "1D components working on the
temporal dimension after each 2D ResBlock and Attention Block", and temporal down/upsampling after the first two
spatial downsamplings / the last two spatial upsamplings (VideoDiT §A.1). Here:

  * 2D blocks are the `AutoencoderKL` blocks applied frame by frame (B*T folded into the batch), under the same
    parameter names as the 2D VAE, so `copy_2d_params` can initialise them from E_k/D_k;
  * each temporal component is a residual `x + conv_t(silu(GN(x)))` with a zero-initialised kernel-3 temporal
    convolution: at initialisation it is the identity;
  * temporal downsampling: mean of frame pairs + zero-initialised stride-2 temporal conv (T -> T/2);
  * temporal upsampling: each frame repeated twice + zero-initialised temporal conv (T -> 2T).

All tensors are channels-last videos `(B, T, H, W, C)`.
"""

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

from framedit_jax.vae import autoencoder_kl as kl

Dtype = Any


def per_frame(module, x):
  """Applies a 2D module `(N, H, W, C) -> (N, H', W', C')` to every frame of `x` `(B, T, H, W, C)`."""
  b, t = x.shape[:2]
  y = module(x.reshape((b * t,) + x.shape[2:]))
  return y.reshape((b, t) + y.shape[1:])


def _temporal_conv(features, stride, name, dtype):
  return nn.Conv(features, (3, 1, 1), strides=(stride, 1, 1), padding=((1, 1), (0, 0), (0, 0)),
                 kernel_init=nn.initializers.zeros, dtype=dtype, param_dtype=jnp.float32, name=name)


class TemporalMix(nn.Module):
  """`x + conv_t(silu(GroupNorm(x)))`, kernel 3 along T, zero-initialised (identity at init).

  `(B, T, H, W, C)` -> same shape.
  """
  num_groups: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    h = nn.silu(kl.GroupNorm32(self.num_groups, self.dtype, name='norm')(x))
    h = _temporal_conv(x.shape[-1], 1, 'conv', self.dtype)(h)
    return (x.astype(jnp.float32) + h.astype(jnp.float32)).astype(self.dtype)


class TemporalDownsample(nn.Module):
  """Mean of consecutive frame pairs plus a zero-initialised stride-2 temporal conv.

  `(B, T, H, W, C)` with T even -> `(B, T/2, H, W, C)`.
  """
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    b, t = x.shape[:2]
    pooled = x.astype(jnp.float32).reshape((b, t // 2, 2) + x.shape[2:]).mean(axis=2)
    h = _temporal_conv(x.shape[-1], 2, 'conv', self.dtype)(x)
    return (pooled + h.astype(jnp.float32)).astype(self.dtype)


class TemporalUpsample(nn.Module):
  """Each frame repeated twice plus a zero-initialised temporal conv. `(B, T, ...)` -> `(B, 2T, ...)`."""
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    x = jnp.repeat(x, 2, axis=1)
    h = _temporal_conv(x.shape[-1], 1, 'conv', self.dtype)(x)
    return (x.astype(jnp.float32) + h.astype(jnp.float32)).astype(self.dtype)


class MidBlock3D(nn.Module):
  """2D `MidBlock` (ResNet, attention, ResNet per frame) with a `TemporalMix` after each of the three."""
  channels: int
  num_groups: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    g, dt = self.num_groups, self.dtype
    x = per_frame(kl.ResnetBlock(self.channels, g, dt, name='resnets_0'), x)
    x = TemporalMix(g, dt, name='temporal_0')(x)
    x = per_frame(kl.AttentionBlock(g, dt, name='attentions_0'), x)
    x = TemporalMix(g, dt, name='temporal_attn_0')(x)
    x = per_frame(kl.ResnetBlock(self.channels, g, dt, name='resnets_1'), x)
    return TemporalMix(g, dt, name='temporal_1')(x)


class Encoder3D(nn.Module):
  """Video `(B, T, H, W, 3)` -> moments `(B, T/2**n_t, H/f, W/f, 2*latent_channels)` (before `quant_conv`).

  f = 2**(len(block_out_channels)-1); the first `num_temporal_down` spatial downsamplings are each followed
  by a temporal one. Parameter names of the 2D blocks are those of `autoencoder_kl.Encoder`.
  """
  block_out_channels: Sequence[int]
  layers_per_block: int
  latent_channels: int
  num_groups: int
  num_temporal_down: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    g, dt = self.num_groups, self.dtype
    h = per_frame(kl._conv(self.block_out_channels[0], 3, 'conv_in', dt), x.astype(dt))  # pylint: disable=protected-access
    last = len(self.block_out_channels) - 1
    for i, ch in enumerate(self.block_out_channels):
      h = _DownBlock3D(ch, self.layers_per_block, g, i != last, i < self.num_temporal_down, dt,
                       name=f'down_blocks_{i}')(h)
    h = MidBlock3D(self.block_out_channels[-1], g, dt, name='mid_block')(h)
    h = nn.silu(per_frame(kl.GroupNorm32(g, dt, name='conv_norm_out'), h))
    return per_frame(kl._conv(2 * self.latent_channels, 3, 'conv_out', dt), h)  # pylint: disable=protected-access


class _DownBlock3D(nn.Module):
  channels: int
  layers_per_block: int
  num_groups: int
  add_downsample: bool
  add_temporal_downsample: bool
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, h):
    for j in range(self.layers_per_block):
      h = per_frame(kl.ResnetBlock(self.channels, self.num_groups, self.dtype, name=f'resnets_{j}'), h)
      h = TemporalMix(self.num_groups, self.dtype, name=f'temporal_{j}')(h)
    if self.add_downsample:
      h = per_frame(kl.Downsample(self.channels, self.dtype, name='downsamplers_0'), h)
    if self.add_temporal_downsample:
      h = TemporalDownsample(self.dtype, name='temporal_downsampler')(h)
    return h


class _UpBlock3D(nn.Module):
  channels: int
  layers_per_block: int
  num_groups: int
  add_upsample: bool
  add_temporal_upsample: bool
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, h):
    for j in range(self.layers_per_block + 1):
      h = per_frame(kl.ResnetBlock(self.channels, self.num_groups, self.dtype, name=f'resnets_{j}'), h)
      h = TemporalMix(self.num_groups, self.dtype, name=f'temporal_{j}')(h)
    if self.add_upsample:
      h = per_frame(kl.Upsample(self.channels, self.dtype, name='upsamplers_0'), h)
    if self.add_temporal_upsample:
      h = TemporalUpsample(self.dtype, name='temporal_upsampler')(h)
    return h


class Decoder3D(nn.Module):
  """Latent video `(B, t, h, w, latent_channels)` -> video `(B, t*2**n_t, h*f, w*f, out_channels)`.

  The last `num_temporal_up` spatial upsamplings are each followed by a temporal one. Parameter names of the
  2D blocks are those of `autoencoder_kl.Decoder`.
  """
  block_out_channels: Sequence[int]
  layers_per_block: int
  out_channels: int
  num_groups: int
  num_temporal_up: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, z):
    g, dt = self.num_groups, self.dtype
    rev = list(reversed(self.block_out_channels))
    h = per_frame(kl._conv(rev[0], 3, 'conv_in', dt), z.astype(dt))  # pylint: disable=protected-access
    h = MidBlock3D(rev[0], g, dt, name='mid_block')(h)
    n_up = len(rev) - 1  # spatial upsamplings happen in blocks 0 .. n_up-1
    for i, ch in enumerate(rev):
      temporal = i < n_up and i >= n_up - self.num_temporal_up
      h = _UpBlock3D(ch, self.layers_per_block, g, i != len(rev) - 1, temporal, dt, name=f'up_blocks_{i}')(h)
    h = nn.silu(per_frame(kl.GroupNorm32(g, dt, name='conv_norm_out'), h))
    return per_frame(kl._conv(self.out_channels, 3, 'conv_out', dt), h)  # pylint: disable=protected-access


class PatchDiscriminator3D(nn.Module):
  """3D PatchGAN discriminator (pix2pix's PatchGAN, Isola et al. 2017, with 3D convolutions).

  Video `(B, T, H, W, 3)` in [-1, 1] -> logits `(B, T', H', W', 1)`, one per space-time patch. Layers:
  conv 4x4x4 stride 2 + LeakyReLU(0.2), then `num_layers - 1` x (conv stride 2, GroupNorm, LeakyReLU), then a
  3x3x3 conv to one logit.
  """
  channels: int = 64
  num_layers: int = 3

  @nn.compact
  def __call__(self, x):
    pad = ((1, 1),) * 3
    h = nn.Conv(self.channels, (4, 4, 4), strides=(2, 2, 2), padding=pad, name='conv_0')(x)
    h = nn.leaky_relu(h, 0.2)
    for i in range(1, self.num_layers):
      c = self.channels * min(2 ** i, 8)
      h = nn.Conv(c, (4, 4, 4), strides=(2, 2, 2), padding=pad, use_bias=False, name=f'conv_{i}')(h)
      h = nn.GroupNorm(num_groups=min(32, c // 4) or 1, name=f'norm_{i}')(h)
      h = nn.leaky_relu(h, 0.2)
    return nn.Conv(1, (3, 3, 3), padding=pad, name='conv_out')(h)

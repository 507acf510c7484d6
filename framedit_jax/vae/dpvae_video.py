"""`DPVideoVAE`: the DP-VAE behind the `VideoVAE` interface (`encode_video` / `decode_video` / `encode_moments`),
and its export directory (`config.vae.name = 'dpvae'`, `config.vae.checkpoint = <dir>`).

Export layout (written by `save_dpvae` at the end of `launch/train_vae.py`):
  <dir>/dpvae_config.json   {"dpvae": DPVAE kwargs, "key_vae": AutoencoderKL kwargs}
  <dir>/params/             Orbax tree {"dpvae": 3D params, "key_vae": frozen 2D params}, float32

Unlike the per-frame SD VAE, the latent has T/t_g frames: `latent_frames(num_frames)`.
"""

import functools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from framedit_jax.vae import distribution
from framedit_jax.vae import dpvae as dp
from framedit_jax.vae.autoencoder_kl import AutoencoderKL

CONFIG_FILE = 'dpvae_config.json'


@functools.lru_cache(maxsize=8)
def _codec_fns(module, key_module):
  """Jitted (encode_moments, decode) shared by every codec of the same architecture (compiled once)."""
  moments = jax.jit(functools.partial(dp.encode_moments, module, key_module=key_module))
  decode = jax.jit(lambda p, z: module.apply({'params': p}, z, method=module.decode))
  return moments, decode


class DPVideoVAE:
  """DP-VAE video codec: `(B, T, H, W, 3)` in [-1, 1] <-> scaled latents `(B, T/t_g, H/f, W/f, C)`.

  Attributes:
    module, params: the trainable `DPVAE` and its params; key_module, key_params: the frozen 2D VAE.
    scale_factor: latents are z * scale_factor (0.18215, the SD VAE's, since z keeps its distribution).
    latent_channels, downsample (spatial f), temporal_downsample (t_g), chunk_size (videos per call).
  """

  def __init__(self, module: dp.DPVAE, params, key_module: AutoencoderKL, key_params, scale_factor=0.18215,
               chunk_size=16):
    self.module, self.params = module, params
    self.key_module, self.key_params = key_module, key_params
    self.scale_factor = float(scale_factor)
    self.chunk_size = max(1, int(chunk_size))
    self.latent_channels = module.latent_channels
    self.downsample = 2 ** (len(module.block_out_channels) - 1)
    self.temporal_downsample = int(module.t_g)
    self._moments, self._decode = _codec_fns(module, key_module)

  def latent_frames(self, num_frames: int) -> int:
    """Latent frames of a `num_frames` clip (num_frames / t_g); ValueError if not divisible."""
    if num_frames % self.temporal_downsample:
      raise ValueError(f'config.data.num_frames={num_frames} must be a multiple of the DP-VAE GoP size '
                       f't_g={self.temporal_downsample}.')
    return num_frames // self.temporal_downsample

  def encode_moments(self, video, params=None):
    """Posterior `(mean, logvar)`, each float32 `(B, T/t_g, H/f, W/f, C)`, unscaled. Raises ValueError on a
    wrong shape or T not a multiple of t_g."""
    dp.check_video(tuple(video.shape), self.temporal_downsample, self.downsample, 'encode_video')
    p = self.params if params is None else params
    return self._moments(p, key_params=self.key_params, video=jnp.asarray(video, jnp.float32))

  def encode_video(self, video, key=None, sample=True, params=None):
    """Video `(B, T, H, W, 3)` in [-1, 1] -> scaled latents `(B, T/t_g, H/f, W/f, C)` (posterior sample with
    `key` if `sample`, else its mean). Raises ValueError on bad shapes or `sample=True` without a key."""
    if sample and key is None:
      raise ValueError('encode_video(sample=True) needs key=jax.random.key(...); pass sample=False for the mode.')
    mean, logvar = self.encode_moments(video, params)
    z = distribution.sample(mean, logvar, key) if sample else mean
    return z * self.scale_factor

  def decode_video(self, z, params=None):
    """Scaled latents `(B, t, h, w, C)` -> video `(B, t * t_g, f h, f w, 3)`, roughly in [-1, 1] (not clipped)."""
    if z.ndim != 5 or z.shape[-1] != self.latent_channels:
      raise ValueError(f'decode_video expects (B, t, h, w, {self.latent_channels}), got {tuple(z.shape)}.')
    p = self.params if params is None else params
    return self._decode(p, jnp.asarray(z, jnp.float32) / self.scale_factor)


def is_dpvae_dir(path) -> bool:
  """True if `path` is a DP-VAE export directory (holds dpvae_config.json)."""
  return bool(path) and os.path.isfile(os.path.join(path, CONFIG_FILE))


def _jsonable(kwargs):
  return {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items() if k != 'dtype'}


def save_dpvae(directory, params, module_kwargs, key_params, key_kwargs):
  """Writes an export directory (layout in the module docstring) that `load_dpvae` reads."""
  directory = os.path.abspath(directory)
  os.makedirs(directory, exist_ok=True)
  tree = jax.tree_util.tree_map(np.asarray, {'dpvae': params, 'key_vae': key_params})
  with ocp.StandardCheckpointer() as ckptr:
    ckptr.save(os.path.join(directory, 'params'), tree, force=True)
  with open(os.path.join(directory, CONFIG_FILE), 'w') as f:
    json.dump({'dpvae': _jsonable(module_kwargs), 'key_vae': _jsonable(key_kwargs)}, f, indent=1)


def load_dpvae(vae_config):
  """`DPVideoVAE` from `config.vae` (name 'dpvae', checkpoint = an export dir, scale_factor, chunk_size).

  Raises:
    FileNotFoundError: checkpoint unset or not an export directory written by `launch/train_vae.py`.
  """
  path = vae_config.get('checkpoint')
  if not is_dpvae_dir(path):
    raise FileNotFoundError(f'config.vae.checkpoint={path} is not a DP-VAE export directory (no {CONFIG_FILE}); '
                            'train one with launch/train_vae.py --config=configs/dpvae_demo.py --workdir=W and '
                            'pass W/dpvae_export.')
  with open(os.path.join(path, CONFIG_FILE)) as f:
    cfg = json.load(f)
  tup = lambda d: {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
  with ocp.StandardCheckpointer() as ckptr:
    tree = ckptr.restore(os.path.join(os.path.abspath(path), 'params'))
  module, key_module = dp.DPVAE(**tup(cfg['dpvae'])), AutoencoderKL(**tup(cfg['key_vae']))
  put = lambda t: jax.device_put(jax.tree_util.tree_map(np.asarray, t))
  return DPVideoVAE(module, put(tree['dpvae']), key_module, put(tree['key_vae']),
                    vae_config.get('scale_factor', 0.18215), vae_config.get('chunk_size', 16))

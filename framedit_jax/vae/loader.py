"""`load_vae(config.vae)`: the SD VAE from a weights file, or the pixel-space identity."""

import os

import jax
import jax.numpy as jnp

from framedit_jax.vae import checkpoint as vae_checkpoint
from framedit_jax.vae import convert
from framedit_jax.vae.autoencoder_kl import AutoencoderKL
from framedit_jax.vae.video import IdentityVAE, VideoVAE

WHERE_TO_GET = convert.WHERE_TO_GET

_DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


def build_module(model_kwargs, dtype='float32'):
  """AutoencoderKL from kwargs (as `convert.infer_vae_config` returns) and a dtype name."""
  if dtype not in _DTYPES:
    raise ValueError(f'config.vae.dtype must be one of {sorted(_DTYPES)}, got {dtype!r}.')
  return AutoencoderKL(**model_kwargs, dtype=_DTYPES[dtype])


def params_shapes(module):
  """ShapeDtypeStruct tree of the module's params (traced, nothing computed)."""
  size = 8 * 2 ** (len(module.block_out_channels) - 1)
  return jax.eval_shape(module.init, jax.random.key(0), jnp.zeros((1, size, size, module.in_channels)))['params']


def load_torch_weights(path, norm_num_groups=32):
  """Reads + converts a torch VAE file. Returns (params numpy tree, AutoencoderKL kwargs)."""
  sd = convert.load_state_dict(path)
  kwargs = dict(convert.infer_vae_config(sd), norm_num_groups=norm_num_groups)
  params = convert.convert_state_dict(sd, params_shapes(AutoencoderKL(**kwargs)))
  return params, kwargs


def load_vae(vae_config):
  """Builds the video VAE named by `config.vae`.

  Args:
    vae_config: ConfigDict with name ('sd' | 'identity' | 'dpvae'), checkpoint (path or None), scale_factor,
      chunk_size, dtype ('float32' | 'bfloat16'), optional norm_num_groups (default 32).
  Returns:
    `VideoVAE` (SD AutoencoderKL, latent 4 channels, /8), `IdentityVAE` (3 channels, /1) or `DPVideoVAE`
    (DP-VAE export directory, latent 4 channels, /8 in space, /t_g in time).
  Raises:
    FileNotFoundError: 'sd' with an unset or missing checkpoint (one line saying what file to get).
    ValueError (`convert.ConversionError`, a `WeightsError`): the file is damaged, an unsafe pickle (refused before
      it runs) or not an AutoencoderKL state dict; one line naming the file.
  """
  name = vae_config.name
  chunk_size = int(vae_config.get('chunk_size', 16))
  if name == 'identity':
    return IdentityVAE(chunk_size)
  if name == 'dpvae':  # VideoDiT DP-VAE export dir (launch/train_vae.py); latent T = num_frames / t_g
    from framedit_jax.vae.dpvae_video import load_dpvae  # pylint: disable=g-import-not-at-top
    return load_dpvae(vae_config)
  if name != 'sd':
    raise ValueError(f"config.vae.name must be 'sd', 'identity' or 'dpvae', got {name!r}.")
  path = vae_config.get('checkpoint')
  if not path:
    raise FileNotFoundError(f'config.vae.checkpoint is not set; {WHERE_TO_GET}.')
  if not os.path.exists(path):
    raise FileNotFoundError(f'config.vae.checkpoint={path} does not exist; {WHERE_TO_GET}.')
  if vae_checkpoint.is_converted_dir(path):
    params, kwargs = vae_checkpoint.restore_vae_params(path)
  else:
    params, kwargs = load_torch_weights(path, int(vae_config.get('norm_num_groups', 32)))
  module = build_module(kwargs, vae_config.get('dtype', 'float32'))
  return VideoVAE(module, jax.device_put(params), vae_config.get('scale_factor', 0.18215), chunk_size)

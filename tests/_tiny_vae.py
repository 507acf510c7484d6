"""A tiny SD-architecture AutoencoderKL with random weights, for the latent-cache tests (no weights can be
downloaded here): the same draws wherever it is used, and saved as a converted VAE dir `load_vae` reads."""

import jax
import jax.numpy as jnp
import numpy as np

from framedit_jax.vae import checkpoint as vae_checkpoint
from framedit_jax.vae.autoencoder_kl import AutoencoderKL

# Three levels: a /4 VAE, shallow enough to compile in seconds on 2 CPU cores.
TINY = dict(block_out_channels=(16, 32, 32), layers_per_block=1, latent_channels=4, norm_num_groups=8)


def random_params(arch=None, seed=0):
  """(module, params): `AutoencoderKL(**arch)` (default TINY) with every weight N(0, 0.2), without compiling init."""
  module = AutoencoderKL(**(arch or TINY))
  shapes = jax.eval_shape(module.init, jax.random.key(0), jnp.zeros((1, 8, 8, 3)))['params']
  rng = np.random.default_rng(seed)
  return module, jax.tree_util.tree_map(lambda s: rng.normal(0, 0.2, s.shape).astype(np.float32), shapes)


def save(directory, params, arch=None):
  """Writes `params` of `AutoencoderKL(**arch)` as a converted VAE dir (`config.vae.checkpoint`)."""
  vae_checkpoint.save_vae_params(str(directory), params, dict(arch or TINY, in_channels=3, out_channels=3))

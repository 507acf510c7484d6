"""Save / restore converted VAE params with Orbax, next to a JSON of the architecture.

Layout of a converted VAE directory:
  <dir>/vae_config.json   AutoencoderKL kwargs (block_out_channels, layers_per_block, ...)
  <dir>/params/           Orbax StandardCheckpointer tree of float32 params
A directory like this can be given as `config.vae.checkpoint` (no torch needed to load it).
"""

import json
import os

import jax
import numpy as np
import orbax.checkpoint as ocp

CONFIG_FILE = 'vae_config.json'


def is_converted_dir(path) -> bool:
  return bool(path) and os.path.isfile(os.path.join(path, CONFIG_FILE))


def save_vae_params(directory, params, model_kwargs):
  """Writes `params` (nested dict of arrays) and `model_kwargs` (JSON-able dict) under `directory`."""
  directory = os.path.abspath(directory)
  os.makedirs(directory, exist_ok=True)
  with ocp.StandardCheckpointer() as ckptr:
    ckptr.save(os.path.join(directory, 'params'), jax.tree_util.tree_map(np.asarray, params), force=True)
  with open(os.path.join(directory, CONFIG_FILE), 'w') as f:
    json.dump({k: list(v) if isinstance(v, tuple) else v for k, v in model_kwargs.items()}, f, indent=1)


def restore_vae_params(directory):
  """Returns (params as numpy float32 nested dict, model_kwargs) written by `save_vae_params`.

  Raises:
    ValueError: a damaged directory (unreadable JSON or params), one line naming it and the fix.
  """
  directory = os.path.abspath(directory)
  try:
    with open(os.path.join(directory, CONFIG_FILE)) as f:
      kwargs = json.load(f)
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    with ocp.StandardCheckpointer() as ckptr:
      params = ckptr.restore(os.path.join(directory, 'params'))
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f'converted VAE {directory} cannot be restored ({type(e).__name__}: '
                     f'{" ".join(str(e).split())[:120]}); it is damaged: convert the VAE weights again '
                     '(save_vae_params) or point config.vae.checkpoint at the original file.') from e
  return jax.tree_util.tree_map(np.asarray, params), kwargs

"""PIPs++ PyTorch checkpoint -> Flax params for ``pips2.track``.

The official FVMD weights are ``pips2_weights.pth`` from
https://github.com/ljh0v0/FVMD-frechet-video-motion-distance/releases/download/pips2_weights/pips2_weights.pth
(a dict whose ``model_state_dict`` holds the ``Pips`` state_dict), read by ``framedit_jax.convert.weights``
(``torch.load(weights_only=True)``; .safetensors and .npz with the same key names load without torch). Torch names map to Flax paths by joining list
indices to their parent (``fnet.layer2.0.downsample.0.weight`` -> ``fnet/layer2_0/downsample_0/kernel``);
conv kernels go OI[H]W -> [H]WIO, linear weights are transposed. ``norm.{weight,bias}`` (a GroupNorm that
``Pips.forward`` never calls) is dropped.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from framedit_jax.convert import weights
from framedit_jax.eval import pips2
from framedit_jax.eval.pips2_layers import BasicEncoder
from framedit_jax.eval.pips2_layers import DeltaBlock

WEIGHTS_URL = ('https://github.com/ljh0v0/FVMD-frechet-video-motion-distance/releases/download/pips2_weights/'
               'pips2_weights.pth')
WEIGHTS_HINT = f'FVMD needs the PIPs++ weights pips2_weights.pth from {WEIGHTS_URL} (the official FVMD tracker).'
UNUSED = ('norm.weight', 'norm.bias')


def _read(path: str) -> dict[str, np.ndarray]:
  if not path or not os.path.exists(path):
    raise FileNotFoundError(f'PIPs++ weights {path!r} not found. {WEIGHTS_HINT}')
  return weights.read_state_dict(path, 'PIPs++ weights')


def _flax_path(key: str):
  """`fnet.layer2.0.downsample.0.weight` -> (('fnet', 'layer2_0', 'downsample_0', 'kernel'), 'kernel')."""
  if key in UNUSED:
    return weights.SKIP
  parts = []
  for p in key.split('.'):
    if p.isdigit() and parts:
      parts[-1] += f'_{p}'
    else:
      parts.append(p)
  if parts[-1] not in ('weight', 'bias'):
    return None
  leaf = {'weight': 'kernel', 'bias': 'bias'}[parts[-1]]
  return tuple(parts[:-1]) + (leaf,), 'kernel' if leaf == 'kernel' else 'copy'


def expected_shapes() -> dict[tuple[str, ...], tuple[int, ...]]:
  """Flax param path -> shape for ``{'fnet': BasicEncoder, 'delta_block': DeltaBlock}`` (from abstract init)."""
  kitchen = pips2.CORR_LEVELS * (2 * pips2.CORR_RADIUS + 1) ** 2 * 3
  fnet = jax.eval_shape(BasicEncoder(pips2.LATENT_DIM, pips2.STRIDE).init, jax.random.key(0),
                        jnp.zeros((1, 64, 64, 3)))['params']
  delta = jax.eval_shape(DeltaBlock(pips2.LATENT_DIM).init, jax.random.key(0), jnp.zeros((1, 4, kitchen)),
                         jnp.zeros((1, 4, 2)))['params']
  return weights.flat_shapes({'fnet': fnet, 'delta_block': delta})


def convert_state_dict(state_dict: dict) -> dict:
  """Torch ``Pips`` state_dict (numpy or torch values) -> nested Flax params ``{'fnet', 'delta_block'}``.

  Raises:
    WeightsError (a ValueError): missing, unexpected and mis-shaped keys in one line (``weights.to_flax``).
  """
  params = weights.to_flax(weights.strip_prefixes(state_dict), expected_shapes(), _flax_path, 'PIPs++ checkpoint',
                           hint=WEIGHTS_HINT)
  return jax.tree.map(jnp.asarray, params)


def load_pips2(path: str | None) -> dict:
  """Reads and converts a PIPs++ checkpoint (.pth / .safetensors / .npz). Raises FileNotFoundError with the URL."""
  return convert_state_dict(_read(path))

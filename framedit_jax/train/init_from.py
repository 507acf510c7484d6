"""`config.model.init_from`: start training from params written by a converter (e.g. init-from-image-DiT).

`launch/init_from_image_dit.py` and `launch/convert_checkpoint.py` write `{'params'}` with orbax plus
`framedit_model.json`; this module restores them into a freshly created `TrainState` (params and EMA), after
checking that the tree matches the model being trained. A run that resumes from its own checkpoint restores over
this, so the init only matters at step 0.
"""

from __future__ import annotations

import json
import os

import jax
import numpy as np


def load_init_params(path: str, like) -> dict:
  """Restores the params at `path` and checks them against `like` (the fresh params' tree / shapes).

  Raises:
    FileNotFoundError: no checkpoint at path. ValueError: model name or param tree/shape mismatch (one line).
  """
  from framedit_jax.convert.checkpoint_io import META_FILE, load_params  # pylint: disable=g-import-not-at-top
  if not os.path.isdir(path) or not os.path.exists(os.path.join(path, META_FILE)):
    raise FileNotFoundError(f'config.model.init_from={path}: not a checkpoint written by '
                            'launch/init_from_image_dit.py or launch/convert_checkpoint.py.')
  params, _ = load_params(path)
  want = {jax.tree_util.keystr(p): tuple(l.shape) for p, l in jax.tree_util.tree_flatten_with_path(like)[0]}
  got = {jax.tree_util.keystr(p): tuple(np.shape(l)) for p, l in jax.tree_util.tree_flatten_with_path(params)[0]}
  if want != got:
    missing = sorted(set(want) - set(got))[:3]
    extra = sorted(set(got) - set(want))[:3]
    shape = sorted(k for k in set(want) & set(got) if want[k] != got[k])[:3]
    meta = json.load(open(os.path.join(path, META_FILE)))
    raise ValueError(f'config.model.init_from={path} holds params of {meta.get("model_name")} '
                     f'{meta.get("overrides")} that do not fit config.model: missing {missing}, unexpected {extra}, '
                     f'shape {shape}; rerun the init tool with matching --model/--override.')
  return params


def apply_init_from(config, state, state_shardings=None):
  """`state` with params and ema_params replaced by `config.model.init_from`'s (no-op when unset/empty)."""
  path = config.model.get('init_from', None)
  if not path:
    return state
  params = load_init_params(path, state.params)
  params = jax.tree.map(lambda p, ref: np.asarray(p, ref.dtype), params, state.params)
  # Two separate host->device copies: params and ema_params must not share buffers (the step donates both).
  if state_shardings is not None:
    return state.replace(params=jax.device_put(params, state_shardings.params),
                         ema_params=jax.device_put(params, state_shardings.ema_params))
  return state.replace(params=jax.device_put(params), ema_params=jax.device_put(params))

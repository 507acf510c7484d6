"""Reading official checkpoints and writing converted params as an orbax checkpoint (no torch import here).

Layout written by `save_params(params, out_dir, ...)` (what `launch/sample.py --checkpoint=out_dir` loads):

  out_dir/                      an `ocp.StandardCheckpointer` checkpoint of the pytree {'params': params}
                                (params: nested dict of float32 arrays, the structure of `get_model(...).init`)
  out_dir/framedit_model.json   {"model_name": ..., "overrides": {...}, "source": ..., "weights": "ema"|"model"}

Restore: `ocp.StandardCheckpointer().restore(out_dir)['params']`, or `load_params(out_dir)`.
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping

import numpy as np

from framedit_jax.convert.official import convert_state_dict

META_FILE = 'framedit_model.json'


def select_state_dict(checkpoint: Mapping[str, Any], weights: str = 'ema') -> tuple[dict[str, Any], str]:
  """Picks the state_dict from an official checkpoint object.

  Official train.py saves {'model': ..., 'ema': ..., 'optimizer': ..., ...}; a bare state_dict is also accepted.

  Args:
    checkpoint: the loaded object.
    weights: 'ema' (default, like the official sampler's `find_model`) or 'model'.

  Returns:
    (state_dict, which) with which in {'ema', 'model', 'state_dict'}.

  Raises:
    ValueError: requested entry missing (one line naming the keys present).
  """
  if weights not in ('ema', 'model'):
    raise ValueError(f"weights must be 'ema' or 'model', got {weights!r}.")
  if 'ema' in checkpoint or 'model' in checkpoint:
    if checkpoint.get(weights) is not None:
      return dict(checkpoint[weights]), weights
    other = 'model' if weights == 'ema' else 'ema'
    if weights == 'ema' and checkpoint.get(other) is not None:
      return dict(checkpoint[other]), other  # no EMA saved: fall back to the raw weights (official behaviour)
    raise ValueError(f'checkpoint has no {weights!r} weights; keys: {sorted(checkpoint)}.')
  if 'state_dict' in checkpoint and isinstance(checkpoint['state_dict'], Mapping):
    return dict(checkpoint['state_dict']), 'state_dict'
  return dict(checkpoint), 'state_dict'


def load_safetensors(path: str) -> dict[str, np.ndarray]:
  """A .safetensors file -> {name: numpy array} (safetensors.numpy, no torch)."""
  from safetensors.numpy import load_file  # pylint: disable=g-import-not-at-top
  return load_file(path)


def save_params(params: Any, out_dir: str, model_name: str, overrides: Mapping[str, Any] | None = None,
                source: str = '', weights: str = '') -> str:
  """Writes `{'params': params}` with `ocp.StandardCheckpointer` to `out_dir` (must not exist) plus the JSON meta.

  Returns:
    The absolute checkpoint directory.

  Raises:
    FileExistsError: out_dir already exists.
  """
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  path = os.path.abspath(out_dir)
  if os.path.exists(path):
    raise FileExistsError(f'--out_dir {path} already exists; choose a new directory.')
  with ocp.StandardCheckpointer() as ckptr:
    ckptr.save(path, {'params': params})
  meta = dict(model_name=model_name, overrides=_jsonable(overrides or {}), source=source, weights=weights)
  with open(os.path.join(path, META_FILE), 'w') as f:
    json.dump(meta, f, indent=2)
  return path


def load_params(out_dir: str) -> tuple[Any, dict[str, Any]]:
  """Restores `(params, meta)` written by `save_params` (params as numpy/jax arrays on the default device)."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  path = os.path.abspath(out_dir)
  with ocp.StandardCheckpointer() as ckptr:
    restored = ckptr.restore(path)
  meta_path = os.path.join(path, META_FILE)
  meta = json.load(open(meta_path)) if os.path.exists(meta_path) else {}
  return restored['params'], meta


def convert_and_save(state_dict: Mapping[str, Any], model_name: str, out_dir: str, source: str = '',
                     weights: str = '', **overrides: Any) -> str:
  """`convert_state_dict` then `save_params`; the inferred sizes are recorded in the JSON meta."""
  from framedit_jax.convert.official import infer_overrides, strip_prefix  # pylint: disable=g-import-not-at-top
  params = convert_state_dict(state_dict, model_name, **overrides)
  used = {**infer_overrides(strip_prefix(state_dict), model_name), **overrides}
  return save_params(params, out_dir, model_name, used, source, weights)


def _jsonable(d: Mapping[str, Any]) -> dict[str, Any]:
  out = {}
  for k, v in d.items():
    if isinstance(v, (bool, int, float, str)) or v is None:
      out[k] = v
    else:
      out[k] = str(np.dtype(v)) if k == 'dtype' else str(v)
  return out

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

META_FILE = 'framedit_model.json'


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
    raise FileExistsError(f'--out {path} already exists; choose a new directory.')
  with ocp.StandardCheckpointer() as ckptr:
    ckptr.save(path, {'params': params})
  meta = dict(model_name=model_name, overrides=_jsonable(overrides or {}), source=source, weights=weights)
  with open(os.path.join(path, META_FILE), 'w') as f:
    json.dump(meta, f, indent=2)
  return path


def load_params(out_dir: str) -> tuple[Any, dict[str, Any]]:
  """Restores `(params, meta)` written by `save_params` (params as numpy/jax arrays on the default device).

  Raises:
    FileNotFoundError: no such directory. ValueError: a damaged checkpoint or meta file (one line naming it).
  """
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  path = os.path.abspath(out_dir)
  if not os.path.isdir(path):
    raise FileNotFoundError(f'converted checkpoint {path} not found; write it with launch/convert_checkpoint.py '
                            'or launch/init_from_image_dit.py.')
  try:
    with ocp.StandardCheckpointer() as ckptr:
      restored = ckptr.restore(path)
    meta_path = os.path.join(path, META_FILE)
    meta = json.load(open(meta_path)) if os.path.exists(meta_path) else {}
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f'converted checkpoint {path} cannot be restored ({type(e).__name__}: '
                     f'{" ".join(str(e).split())[:120]}); it is damaged: convert the source weights again.') from e
  return restored['params'], meta


def convert_and_save(state_dict: Mapping[str, Any], model_name: str, out_dir: str, source: str = '',
                     weights: str = '', **overrides: Any) -> str:
  """`convert_state_dict` then `save_params`; the inferred sizes are recorded in the JSON meta."""
  from framedit_jax.convert.official import convert_state_dict  # pylint: disable=g-import-not-at-top
  from framedit_jax.convert.official import infer_overrides  # pylint: disable=g-import-not-at-top
  from framedit_jax.convert.weights import strip_prefixes  # pylint: disable=g-import-not-at-top
  params = convert_state_dict(state_dict, model_name, **overrides)
  used = {**infer_overrides(strip_prefixes(state_dict), model_name), **overrides}
  return save_params(params, out_dir, model_name, used, source, weights)


def parse_overrides(items: list[str]) -> dict[str, Any]:
  """`--override` values `['k=v', ...]` -> `{k: int | float | bool | str}` (the launchers' `get_model` overrides).

  Raises:
    ValueError: an item without '=' (one line).
  """
  out = {}
  for item in items:
    if '=' not in item:
      raise ValueError(f'--override {item!r} must be key=value, e.g. --override=num_frames=16.')
    key, text = (s.strip() for s in item.split('=', 1))
    value: Any = text
    if text.lower() in ('true', 'false'):
      value = text.lower() == 'true'
    else:
      for cast in (int, float):
        try:
          value = cast(text)
          break
        except ValueError:
          pass
    out[key] = value
  return out


def _jsonable(d: Mapping[str, Any]) -> dict[str, Any]:
  out = {}
  for k, v in d.items():
    if isinstance(v, (bool, int, float, str)) or v is None:
      out[k] = v
    else:
      out[k] = str(np.dtype(v)) if k == 'dtype' else str(v)
  return out

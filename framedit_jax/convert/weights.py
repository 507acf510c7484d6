"""The one reader of foreign weight files, and the one walker that maps a state_dict onto a Flax param tree.

Every converter (FrameDiT/Latte, image DiT, T2V, T5, VAE, Inception, C3D, LPIPS, PIPs++) reads its file with
`read_state_dict` and fills its params with `to_flax`; a file or key problem is a `WeightsError`, a `ValueError`
whose message is one line naming the file (or the model) and the fix, which `framedit_jax.train.cli.run` prints
as `error: ...`.

Files (`read_state_dict(path)`):
  .safetensors          safetensors (no torch; bfloat16 tensors are read through safetensors' flax reader)
  .npz                  numpy, `allow_pickle=False`
  .pt .pth .bin .ckpt   `torch.load(weights_only=True)`: only tensors and plain containers are unpickled, a pickle
                        that names any other code is refused before it runs (torch is imported only here)
  a folder              a diffusers / transformers model folder: `*.safetensors.index.json` (or `*.bin.index.json`)
                        and the shards its `weight_map` names, else every `*.safetensors`, else every `*.bin`/`*.pt`
                        (also looked for under `subfolder`, e.g. `vae/` of a pipeline folder)

Which weights (`select_state_dict`): official training checkpoints (Latte / FrameDiT `train.py`) hold
`{'model', 'ema', 'opt', ...}`: `weights='ema'` (default, as the official samplers) or `'model'`; an EMA-less file
falls back to 'model'. Lightning / LDM `.ckpt` and PIPs++ files nest the weights under `'state_dict'` /
`'model_state_dict'`; anything else is a bare state_dict. Key prefixes of DDP (`module.`) and `torch.compile`
(`_orig_mod.`) are stripped. Floating tensors become float32 numpy arrays, others keep their dtype; non-tensor
entries are dropped.

Mapping (`to_flax`): `rename(torch_key)` gives the Flax path and layout (`'kernel'`: a torch weight (O, I, *k) ->
(*k, I, O), i.e. Linear (out, in) -> (in, out) and Conv OI[T]HW -> [T]HWIO; `'copy'`; or a function), `SKIP`
(a key the format defines as unused) or None (unexpected). Missing, unexpected and wrongly shaped keys are
reported together by `mismatch_error`, the one report format:

  <what>: 2 missing [a.weight, b.bias]; 1 unexpected [c.weight]; 1 wrong shape [d.weight (3, 4) -> d/kernel (4, 4)]. <hint>
"""

from __future__ import annotations

import glob
import json
import os
import pickle
from typing import Any, Callable, Iterable, Mapping

import flax
import numpy as np

TORCH_SUFFIXES = ('.pt', '.pth', '.bin', '.ckpt')
SUFFIXES = ('.safetensors', '.npz') + TORCH_SUFFIXES
PREFIXES = ('module.', '_orig_mod.')  # DDP, torch.compile
WRAPPERS = ('state_dict', 'model_state_dict')  # Lightning / LDM .ckpt, PIPs++ pips2_weights.pth
WEIGHTS = ('ema', 'model')
SKIP = object()  # `rename` result: a key the format defines as unused (dropped without a report)
_LIST = 8  # names listed per category in a report
_VARIANTS = ('fp16', 'bf16')  # diffusers weight variants


class WeightsError(ValueError):
  """A weight file that cannot be read, or a state_dict that does not fit the model (one-line message)."""


class StateDict(dict):
  """`{key: numpy array}` read from `source`; `which` is 'ema', 'model' or 'state_dict' (what was selected)."""

  source: str = ''
  which: str = 'state_dict'


# ------------------------------------------------------------------------------------------------ reading
def read_state_dict(path: str, what: str = 'weights', weights: str = 'ema', hint: str = '',
                    subfolder: str | None = None, prefixes: Iterable[str] = PREFIXES,
                    allow_pickle: bool = False) -> StateDict:
  """Reads a weight file or model folder into `{key: numpy array}` (see the module docstring for formats).

  Args:
    path: a `.safetensors` / `.npz` / `.pt` / `.pth` / `.bin` / `.ckpt` file, or a model folder.
    what: what the file is, for messages ('VAE weights', '--src', ...).
    weights: 'ema' or 'model' for training checkpoints holding both (bare state_dicts ignore it).
    hint: where to get the right file; appended to a missing-file message.
    subfolder: also look for the weights under `path/subfolder` (e.g. 'vae' in a diffusers pipeline folder).
    prefixes: key prefixes to strip (each, wherever a key starts with it).
    allow_pickle: `torch.load(weights_only=False)`, which RUNS the pickle's code: only for a file you trust.

  Returns:
    A `StateDict` (a dict with `.source` and `.which`).

  Raises:
    FileNotFoundError: `path` (or the weights in the folder) does not exist.
    WeightsError: an unknown suffix, a damaged / truncated / non-weight file, an unsafe pickle, or a missing
      'ema'/'model' entry; one line naming the file and the fix.
  """
  if weights not in WEIGHTS:
    raise WeightsError(f"{what}: weights must be 'ema' or 'model', got {weights!r}.")
  if not path or not os.path.exists(path):
    raise FileNotFoundError(f'{what} {path!r}: no such file or folder' + (f'; {hint}' if hint else '.'))
  files = folder_files(path, what, subfolder) if os.path.isdir(path) else [path]
  flat, which = {}, 'state_dict'
  for f in files:
    sd, which = select_state_dict(_read_file(f, what, allow_pickle), weights, f'{what} {f}')
    flat.update(sd)
  out = StateDict(strip_prefixes(numpy_state_dict(flat), prefixes))
  if not out:
    raise WeightsError(f'{what} {path}: holds no tensors; pass the model\'s weight file.')
  out.source, out.which = os.path.abspath(path), which
  return out


def folder_files(folder: str, what: str = 'weights', subfolder: str | None = None) -> list[str]:
  """The weight files of a diffusers / transformers model folder (index json shards first, then safetensors)."""
  for d in [folder] + ([os.path.join(folder, subfolder)] if subfolder else []):
    for ext in ('.safetensors', '.bin'):
      for index in sorted(glob.glob(os.path.join(d, f'*{ext}.index.json'))):
        try:
          with open(index) as f:
            shards = sorted(set(json.load(f)['weight_map'].values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
          raise WeightsError(f'{what} {index}: not a readable shard index ({type(e).__name__}: {_short(e)}); '
                             're-download the model folder.') from e
        missing = [s for s in shards if not os.path.isfile(os.path.join(d, s))]
        if missing:
          raise FileNotFoundError(f'{what} {d}: shard(s) {missing[:3]} named by {os.path.basename(index)} are '
                                  'missing; re-download the model folder.')
        return [os.path.join(d, s) for s in shards]
    for pattern in ('*.safetensors', '*.bin', '*.pt', '*.pth', '*.ckpt'):
      files = sorted(glob.glob(os.path.join(d, pattern)))
      full = [f for f in files if not any(f'.{v}.' in os.path.basename(f) for v in _VARIANTS)]
      if files:
        return full or files  # `x.fp16.safetensors` beside `x.safetensors` is the same model in half precision
  where = f'{folder} (or its {subfolder}/)' if subfolder else folder
  raise FileNotFoundError(f'{what} folder {where} holds no *.safetensors / *.bin weights; pass the model folder '
                          '(config.json + weights) or the weight file itself.')


def _read_file(path: str, what: str, allow_pickle: bool) -> Any:
  """One file -> the object it holds (a dict of arrays/tensors, possibly nested)."""
  name = f'{what} {path}'
  if path.endswith('.safetensors'):
    return _read_safetensors(path, name)
  if path.endswith('.npz'):
    try:
      with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
    except Exception as e:  # pylint: disable=broad-except
      raise WeightsError(f'{name}: not a readable .npz ({type(e).__name__}: {_short(e)}); the file is damaged, '
                         'or holds pickled objects: re-save plain arrays with np.savez.') from e
  if not path.endswith(TORCH_SUFFIXES):
    raise WeightsError(f'{name}: unknown weight format; expected one of {", ".join(SUFFIXES)} or a model folder.')
  return _torch_load(path, name, allow_pickle)


def _read_safetensors(path: str, name: str) -> dict[str, np.ndarray]:
  from safetensors import safe_open  # pylint: disable=g-import-not-at-top
  try:
    try:
      from safetensors.numpy import load_file  # pylint: disable=g-import-not-at-top
      return dict(load_file(path))
    except TypeError:  # a dtype numpy has no name for (bfloat16): read through jax on the CPU
      import jax  # pylint: disable=g-import-not-at-top
      with jax.default_device(jax.devices('cpu')[0]), safe_open(path, framework='flax') as reader:
        return {k: np.asarray(reader.get_tensor(k).astype('float32')) for k in reader.keys()}
  except Exception as e:  # pylint: disable=broad-except
    raise WeightsError(f'{name}: not a readable .safetensors file ({type(e).__name__}: {_short(e)}); the file is '
                       'truncated or damaged, re-download or re-save it.') from e


def _torch_load(path: str, name: str, allow_pickle: bool) -> Any:
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise WeightsError(f'{name}: reading a torch file needs torch (pip install torch), or convert it to '
                       '.safetensors on a machine that has it.') from e
  try:
    return torch.load(path, map_location='cpu', weights_only=not allow_pickle)
  except Exception as e:  # pylint: disable=broad-except
    if isinstance(e, pickle.UnpicklingError) and 'Unsupported global' in str(e):
      # weights_only=True met a global it does not allow and stopped: nothing in the pickle ran.
      raise WeightsError(f'{name}: refused, the pickle needs code beyond tensors ({_refused_global(e)}), which '
                         'torch.load(weights_only=True) does not run; re-save only the weights '
                         "(torch.save(model.state_dict(), p) or torch.save(ckpt['ema'], p)) or convert them to "
                         '.safetensors.') from e
    raise WeightsError(f'{name}: not a readable torch file ({type(e).__name__}: {_first_line(e)}); it is '
                       'truncated or damaged (re-download it), or not a torch.save file.') from e


def _first_line(err: BaseException) -> str:
  text = str(err)
  if 'Unpickler error:' in text:
    text = text.split('Unpickler error:', 1)[1]
  return _short(ValueError(text.strip().split('. ')[0]), 100)


def _refused_global(err: BaseException) -> str:
  return 'global ' + str(err).split('Unsupported global: GLOBAL ', 1)[1].split()[0]


def _short(err: BaseException, n: int = 120) -> str:
  text = ' '.join(str(err).split())
  return text[:n] + ('...' if len(text) > n else '')


def _to_numpy(value: Any) -> np.ndarray | None:
  """A torch tensor (duck-typed: no torch import) or array -> numpy (floating -> float32); None if not an array."""
  if hasattr(value, 'detach'):
    value = value.detach().cpu()
    value = value.float() if value.is_floating_point() else value
    value = value.numpy()
  if not isinstance(value, np.ndarray) and not hasattr(value, '__array__'):
    return None
  arr = np.asarray(value)
  if arr.dtype == object:
    return None
  floating = np.issubdtype(arr.dtype, np.floating) or 'float' in arr.dtype.name  # + ml_dtypes' bfloat16
  return arr.astype(np.float32) if floating else arr


def numpy_state_dict(state_dict: Mapping[str, Any]) -> dict[str, np.ndarray]:
  """`{key: numpy array}` of a state_dict of torch tensors or arrays (floating -> float32; non-arrays dropped)."""
  return {k: a for k, a in ((k, _to_numpy(v)) for k, v in state_dict.items()) if a is not None}


def select_state_dict(checkpoint: Any, weights: str = 'ema', name: str = 'checkpoint') -> tuple[dict[str, Any], str]:
  """Picks the state_dict of a loaded checkpoint object (see the module docstring).

  Returns:
    `(state_dict, which)` with which in {'ema', 'model', 'state_dict'}.

  Raises:
    WeightsError: not a dict, or the requested entry is absent (one line naming the keys present).
  """
  if weights not in WEIGHTS:
    raise WeightsError(f"{name}: weights must be 'ema' or 'model', got {weights!r}.")
  if not isinstance(checkpoint, Mapping):
    raise WeightsError(f'{name}: holds a {type(checkpoint).__name__}, not a state_dict; save the weights with '
                       'torch.save(model.state_dict(), p).')
  if 'ema' in checkpoint or 'model' in checkpoint:
    if isinstance(checkpoint.get(weights), Mapping):
      return dict(checkpoint[weights]), weights
    if weights == 'ema' and isinstance(checkpoint.get('model'), Mapping):
      return dict(checkpoint['model']), 'model'  # no EMA saved: the raw weights (the official samplers do the same)
    raise WeightsError(f'{name}: has no {weights!r} weights (keys: {sorted(map(str, checkpoint))[:_LIST]}); '
                       f"pass weights='model' or another checkpoint.")
  for wrapper in WRAPPERS:
    if isinstance(checkpoint.get(wrapper), Mapping):
      return dict(checkpoint[wrapper]), 'state_dict'
  return dict(checkpoint), 'state_dict'


def strip_prefixes(state_dict: Mapping[str, Any], prefixes: Iterable[str] = PREFIXES) -> dict[str, Any]:
  """Drops every wrapper prefix each key starts with, e.g. 'module._orig_mod.blocks.0.x' -> 'blocks.0.x'."""
  prefixes = tuple(prefixes)
  return {_strip_key(k, prefixes): v for k, v in state_dict.items()}


def _strip_key(key: str, prefixes: tuple[str, ...]) -> str:
  changed = True
  while changed:
    changed = False
    for pre in prefixes:
      if key.startswith(pre):
        key, changed = key[len(pre):], True
  return key


# ------------------------------------------------------------------------------------------------ mapping
def flatten(tree: Mapping[str, Any]) -> dict[tuple[str, ...], Any]:
  """A nested params tree -> `{path tuple: leaf}` (`flax.traverse_util.flatten_dict`)."""
  return flax.traverse_util.flatten_dict(flax.core.unfreeze(tree))


def unflatten(flat: Mapping[tuple[str, ...], Any]) -> dict[str, Any]:
  """Inverse of `flatten` (`flax.traverse_util.unflatten_dict`)."""
  return flax.traverse_util.unflatten_dict(dict(flat))


def flat_shapes(tree: Mapping[Any, Any]) -> dict[tuple[str, ...], tuple[int, ...]]:
  """A nested params tree (arrays or `jax.ShapeDtypeStruct`s), or a flat `{path tuple: shape}` -> the latter."""
  if tree and all(isinstance(k, tuple) for k in tree):
    return {k: tuple(v) for k, v in tree.items()}
  return {k: tuple(v.shape) if hasattr(v, 'shape') else np.shape(v) for k, v in flatten(tree).items()}


def torch_to_flax_kernel(arr: np.ndarray) -> np.ndarray:
  """A torch weight (O, I, *k) -> Flax (*k, I, O): Linear (out, in) -> (in, out), Conv OI[T]HW -> [T]HWIO."""
  return np.transpose(arr, tuple(range(2, arr.ndim)) + (1, 0)) if arr.ndim >= 2 else arr


def flax_to_torch_kernel(arr: np.ndarray) -> np.ndarray:
  """Inverse of `torch_to_flax_kernel`."""
  return np.transpose(arr, (arr.ndim - 1, arr.ndim - 2) + tuple(range(arr.ndim - 2))) if arr.ndim >= 2 else arr


_LAYOUTS = {'kernel': torch_to_flax_kernel, 'copy': lambda a: a}


def to_flax(state_dict: Mapping[str, Any], target: Mapping[str, Any], rename: Callable[[str], Any], what: str,
            hint: str = '', name_of_missing: Callable[[tuple[str, ...]], str] | None = None,
            problems: Iterable[str] = ()) -> dict[str, Any]:
  """Maps a state_dict onto the structure of `target`; every problem is reported at once.

  Args:
    state_dict: `{torch key: array}` (numpy or torch tensors).
    target: the params tree to fill (arrays or `jax.ShapeDtypeStruct`s, e.g. from `jax.eval_shape(init)`), or a
      flat `{path tuple: shape}`.
    rename: torch key -> `(flax path tuple, layout)` with layout 'kernel', 'copy' or a function of the array;
      `SKIP` for a key to drop; None (or a path not in `target`) for an unexpected key.
    what: the model or file, first in the message.
    hint: the fix, last in the message.
    name_of_missing: flax path -> the torch key a missing param is looked for under (default '/'-joined path).
    problems: further problems found by the caller (frozen buffers, ...), reported in the same line.

  Returns:
    A nested dict of numpy arrays with exactly the structure of `target` (float32 where the file is floating).

  Raises:
    WeightsError: missing, unexpected or wrongly shaped keys, or `problems` (`mismatch_error`).
  """
  targets = flat_shapes(target)
  out, unexpected, wrong, wrong_paths = {}, [], [], set()
  for key, value in state_dict.items():
    r = rename(key)
    if r is SKIP:
      continue
    if r is None or r[0] not in targets:
      unexpected.append(key)
      continue
    path, layout = r
    arr = _to_numpy(value)
    if arr is None:
      unexpected.append(key)
      continue
    new = (_LAYOUTS[layout] if isinstance(layout, str) else layout)(arr)
    if new is None or tuple(new.shape) != targets[path]:
      wrong.append(f'{key} {tuple(arr.shape)} -> {"/".join(path)} {targets[path]}')
      wrong_paths.add(path)
    elif path in out:
      unexpected.append(f'{key} (a second value for {"/".join(path)})')
    else:
      out[path] = np.ascontiguousarray(new)
  name = name_of_missing or '/'.join
  missing = [name(p) for p in targets if p not in out and p not in wrong_paths]
  problems = list(problems)
  if missing or unexpected or wrong or problems:
    raise mismatch_error(what, missing, unexpected, wrong, problems, hint)
  return unflatten(out)


def mismatch_error(what: str, missing: Iterable[str] = (), unexpected: Iterable[str] = (),
                   wrong_shape: Iterable[str] = (), problems: Iterable[str] = (), hint: str = '') -> WeightsError:
  """The one missing/unexpected-keys report: `what: N missing [...]; N unexpected [...]; N wrong shape [...];
  problems. hint` (up to 8 names per category, sorted), as a `WeightsError` to raise."""
  parts = []
  for label, items in (('missing', missing), ('unexpected', unexpected), ('wrong shape', wrong_shape)):
    items = sorted(items)
    if items:
      more = f', ... {len(items) - _LIST} more' if len(items) > _LIST else ''
      parts.append(f'{len(items)} {label} [{", ".join(items[:_LIST])}{more}]')
  parts += list(problems)
  hint = hint if not hint or hint.endswith('.') else hint + '.'
  return WeightsError(f'{what}: ' + '; '.join(parts) + (f'. {hint}' if hint else '.'))

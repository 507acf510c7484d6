"""Official DiT checkpoints (facebookresearch/DiT, e.g. `DiT-XL-2-256x256.pt`) -> `framedit_jax.models.image_dit`.

Key mapping (official `models.py` names; same scheme as the Latte converter, `framedit_jax.convert.official`):

  x_embedder.proj.{weight (D, C, p, p), bias}   -> x_embedder/proj/{kernel (p, p, C, D), bias}
  t_embedder.mlp.{0,2}.{weight, bias}           -> t_embedder/mlp_{0,2}/{kernel (transposed), bias}
  y_embedder.embedding_table.weight             -> y_embedder/embedding_table/embedding   (num_classes + 1 rows)
  blocks.i.{attn.qkv, attn.proj, mlp.fc1, mlp.fc2, adaLN_modulation.1}.*  -> blocks_i/...
  final_layer.{adaLN_modulation.1, linear}.*    -> final_layer/...
  pos_embed (1, N, D)                            frozen 2-D sin-cos: checked against ours, dropped

The released `DiT-XL-2-{256,512}.pt` files are bare state_dicts; training checkpoints `{'model', 'ema', ...}` are
accepted too (EMA by default). `.pt` is read with `torch.load(weights_only=True)` (torch imported lazily) and
`.safetensors` without torch.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from framedit_jax.convert.official import _path_str, _torch_key, strip_prefix, to_numpy
from framedit_jax.models.embeddings import get_2d_sincos_pos_embed
from framedit_jax.models.image_dit import get_image_dit, image_dit_config


def load_dit_checkpoint(path: str, weights: str = 'ema') -> dict[str, np.ndarray]:
  """Reads an official DiT checkpoint file into a `{official key: float32 numpy}` state_dict.

  Args:
    path: `.pt` / `.pth` (bare state_dict or `{'model', 'ema', ...}`) or `.safetensors`.
    weights: 'ema' or 'model' for training checkpoints (bare state_dicts ignore it).

  Raises:
    FileNotFoundError: no such file. ValueError: unsupported suffix, or a .pt that needs pickle code.
  """
  if not os.path.exists(path):
    raise FileNotFoundError(f'--dit={path}: no such file (an official DiT checkpoint, e.g. DiT-XL-2-256x256.pt).')
  if path.endswith('.safetensors'):
    from safetensors.numpy import load_file  # pylint: disable=g-import-not-at-top
    return {k: to_numpy(v) for k, v in load_file(path).items()}
  if not path.endswith(('.pt', '.pth')):
    raise ValueError(f'--dit={path}: expected a .pt, .pth or .safetensors file.')
  import torch  # pylint: disable=g-import-not-at-top
  from framedit_jax.convert.checkpoint_io import select_state_dict  # pylint: disable=g-import-not-at-top
  try:
    obj = torch.load(path, map_location='cpu', weights_only=True)
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f'torch.load(weights_only=True) failed on {path} ({type(e).__name__}); re-save the bare '
                     'state_dict with torch.save(model.state_dict(), p).') from e
  sd, _ = select_state_dict(obj, weights)
  return {k: to_numpy(v) for k, v in sd.items()}


def infer_dit_overrides(state_dict: Mapping[str, Any]) -> dict[str, Any]:
  """input_size, in_channels, num_classes, learn_sigma and patch_size read off the tensors of a DiT state_dict."""
  sd = strip_prefix(state_dict)
  out = {}
  if 'x_embedder.proj.weight' in sd:
    w = sd['x_embedder.proj.weight']
    out['in_channels'], out['patch_size'] = int(w.shape[1]), int(w.shape[2])
    if 'pos_embed' in sd:
      out['input_size'] = int(round(np.sqrt(sd['pos_embed'].shape[1]))) * out['patch_size']
    if 'final_layer.linear.weight' in sd:
      c_out = int(sd['final_layer.linear.weight'].shape[0]) // out['patch_size']**2
      out['learn_sigma'] = c_out == 2 * out['in_channels']
  table = sd.get('y_embedder.embedding_table.weight')
  out['num_classes'] = 0 if table is None else int(table.shape[0]) - 1
  return out


def convert_dit_state_dict(state_dict: Mapping[str, Any], model_name: str = 'DiT-XL/2', check_pos_embed: bool = True,
                           **overrides: Any) -> dict[str, Any]:
  """Maps an official DiT state_dict to params of `get_image_dit(model_name, **overrides)`.

  Args:
    state_dict: official key -> tensor/array (a 'module.' prefix is stripped).
    model_name: 'DiT-XL/2' etc.; depth/hidden/heads come from it unless overridden.
    check_pos_embed: compare the frozen `pos_embed` with our sin-cos constant (atol 1e-4).
    **overrides: `get_image_dit` overrides; input_size, in_channels, num_classes, learn_sigma default to what the
      tensors imply (`infer_dit_overrides`).

  Returns:
    Nested dict of float32 numpy arrays with exactly the structure of the module's `init`.

  Raises:
    ValueError: missing keys, unexpected keys or shape mismatches, all listed in one message.
  """
  sd = {k: to_numpy(v) for k, v in strip_prefix(state_dict).items()}
  inferred = infer_dit_overrides(sd)
  if 'patch_size' in inferred and inferred['patch_size'] != image_dit_config(model_name)['patch_size']:
    raise ValueError(f'convert_dit_state_dict: checkpoint patch size {inferred["patch_size"]} does not match '
                     f'{model_name!r}; pick the DiT name with /{inferred["patch_size"]}.')
  inferred.pop('patch_size', None)
  module = get_image_dit(model_name, **{**inferred, **overrides})
  x = jax.ShapeDtypeStruct((1, module.input_size, module.input_size, module.in_channels), jnp.float32)
  t = jax.ShapeDtypeStruct((1,), jnp.int32)
  y = jax.ShapeDtypeStruct((1,), jnp.int32) if module.num_classes > 0 else None
  shapes = jax.eval_shape(lambda x, t, y: module.init({'params': jax.random.PRNGKey(0)}, x, t, y)['params'],
                          x, t, y)
  problems, used, leaves = [], set(), []
  for path, leaf in jax.tree_util.tree_flatten_with_path(shapes)[0]:
    key, transform = _torch_key(_path_str(path))
    if key not in sd:
      problems.append(f'missing {key} {tuple(leaf.shape)}')
      leaves.append(None)
      continue
    used.add(key)
    arr = sd[key]
    if transform == 'dense':
      arr = arr.T
    elif transform == 'conv':
      arr = np.transpose(arr, (2, 3, 1, 0))
    if arr.shape != tuple(leaf.shape):
      problems.append(f'shape {key}: {tuple(sd[key].shape)} does not give {tuple(leaf.shape)}')
    leaves.append(np.ascontiguousarray(arr, np.float32))
  if 'pos_embed' in sd:
    used.add('pos_embed')
    ref = get_2d_sincos_pos_embed(module.hidden_size, module.input_size // module.patch_size)[None]
    if sd['pos_embed'].shape != ref.shape:
      problems.append(f'shape pos_embed: {sd["pos_embed"].shape} != {ref.shape} (input_size)')
    elif check_pos_embed and not np.allclose(sd['pos_embed'], ref, atol=1e-4):
      problems.append(f'pos_embed differs from the fixed sin-cos embedding by {np.abs(sd["pos_embed"] - ref).max():.3g}')
  unexpected = sorted(set(sd) - used)
  if unexpected:
    problems.append('unexpected ' + ', '.join(unexpected))
  if problems:
    raise ValueError(f'convert_dit_state_dict({model_name!r}): {len(problems)} problem(s): ' + '; '.join(problems))
  return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(shapes), leaves)


def export_dit_state_dict(params: Mapping[str, Any], input_size: int | None = None) -> dict[str, np.ndarray]:
  """Inverse of `convert_dit_state_dict`: our DiT params -> official key names and layouts (float32 numpy).

  Adds the frozen `pos_embed (1, N, D)` when `input_size` (latent H = W) is given, as the official state_dict
  holds it. Used to write demo / test checkpoints in the official layout.
  """
  out = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
    key, transform = _torch_key(_path_str(path))
    arr = np.asarray(leaf, np.float32)
    if transform == 'dense':
      arr = arr.T
    elif transform == 'conv':
      arr = np.transpose(arr, (3, 2, 0, 1))
    out[key] = np.ascontiguousarray(arr)
  if input_size is not None:
    w = out['x_embedder.proj.weight']
    out['pos_embed'] = get_2d_sincos_pos_embed(w.shape[0], input_size // w.shape[2])[None]
  return out

"""Official DiT checkpoints (facebookresearch/DiT, e.g. `DiT-XL-2-256x256.pt`) -> `framedit_jax.models.image_dit`.

Key mapping (official `models.py` names; same scheme as the Latte converter, `framedit_jax.convert.official`):

  x_embedder.proj.{weight (D, C, p, p), bias}   -> x_embedder/proj/{kernel (p, p, C, D), bias}
  t_embedder.mlp.{0,2}.{weight, bias}           -> t_embedder/mlp_{0,2}/{kernel (transposed), bias}
  y_embedder.embedding_table.weight             -> y_embedder/embedding_table/embedding   (num_classes + 1 rows)
  blocks.i.{attn.qkv, attn.proj, mlp.fc1, mlp.fc2, adaLN_modulation.1}.*  -> blocks_i/...
  final_layer.{adaLN_modulation.1, linear}.*    -> final_layer/...
  pos_embed (1, N, D)                            frozen 2-D sin-cos: checked against ours, dropped

The released `DiT-XL-2-{256,512}.pt` files are bare state_dicts; training checkpoints `{'model', 'ema', ...}` are
accepted too (EMA by default). Files are read by `framedit_jax.convert.weights.read_state_dict` (`.pt` with
`torch.load(weights_only=True)`, torch imported lazily; `.safetensors` / `.npz` without torch).
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from framedit_jax.convert.official import _torch_key, official_to_flax
from framedit_jax.convert.weights import (flatten, flax_to_torch_kernel, numpy_state_dict, read_state_dict,
                                          strip_prefixes)
from framedit_jax.models.embeddings import get_2d_sincos_pos_embed
from framedit_jax.models.image_dit import get_image_dit, image_dit_config


def load_dit_checkpoint(path: str, weights: str = 'ema') -> dict[str, np.ndarray]:
  """Reads an official DiT checkpoint file into a `{official key: float32 numpy}` state_dict.

  Args:
    path: `.pt` / `.pth` (bare state_dict or `{'model', 'ema', ...}`), `.safetensors` or `.npz`.
    weights: 'ema' or 'model' for training checkpoints (bare state_dicts ignore it).

  Raises:
    FileNotFoundError: no such file. WeightsError (a ValueError): an unknown suffix, a damaged file, or a
      pickle that needs code (refused before it runs).
  """
  return read_state_dict(path, 'DiT checkpoint', weights, hint='pass an official DiT checkpoint, e.g. '
                         'DiT-XL-2-256x256.pt from github.com/facebookresearch/DiT.')


def infer_dit_overrides(state_dict: Mapping[str, Any]) -> dict[str, Any]:
  """input_size, in_channels, num_classes, learn_sigma and patch_size read off the tensors of a DiT state_dict."""
  sd = strip_prefixes(state_dict)
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
  sd = numpy_state_dict(strip_prefixes(state_dict))
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
  problems = []
  if 'pos_embed' in sd:
    pos = sd.pop('pos_embed')
    ref = get_2d_sincos_pos_embed(module.hidden_size, module.input_size // module.patch_size)[None]
    if pos.shape != ref.shape:
      problems.append(f'pos_embed {pos.shape} != {ref.shape} (input_size)')
    elif check_pos_embed and not np.allclose(pos, ref, atol=1e-4):
      problems.append(f'pos_embed differs from the fixed sin-cos embedding by {np.abs(pos - ref).max():.3g}')
  return official_to_flax(sd, shapes, f'convert_dit_state_dict({model_name!r})', problems)


def export_dit_state_dict(params: Mapping[str, Any], input_size: int | None = None) -> dict[str, np.ndarray]:
  """Inverse of `convert_dit_state_dict`: our DiT params -> official key names and layouts (float32 numpy).

  Adds the frozen `pos_embed (1, N, D)` when `input_size` (latent H = W) is given, as the official state_dict
  holds it. Used to write demo / test checkpoints in the official layout.
  """
  out = {}
  for path, leaf in flatten(params).items():
    key, transform = _torch_key(path)
    arr = np.asarray(leaf, np.float32)
    out[key] = np.ascontiguousarray(arr if transform == 'copy' else flax_to_torch_kernel(arr))
  if input_size is not None:
    w = out['x_embedder.proj.weight']
    out['pos_embed'] = get_2d_sincos_pos_embed(w.shape[0], input_size // w.shape[2])[None]
  return out

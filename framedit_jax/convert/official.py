"""Official FrameDiT / Latte PyTorch `state_dict` -> framedit_jax Flax params.

Key mapping (official module names, `models/{latte,dit3d,framedit_g,framedit_h}*.py`):

  x_embedder.proj.weight (D, C, p, p)        -> x_embedder/proj/kernel (p, p, C, D)
  t_embedder.mlp.{0,2}.weight (out, in)      -> t_embedder/mlp_{0,2}/kernel (in, out)
  y_embedder.embedding_table.weight          -> y_embedder/embedding_table/embedding
  blocks.i.adaLN_modulation.1.*              -> blocks_i/adaLN_modulation/*
  blocks.i.attn.{qkv,proj}.*                 -> blocks_i/attn/{qkv,proj}/*
  blocks.i.mlp.{fc1,fc2}.*                   -> blocks_i/mlp/{fc1,fc2}/*
  blocks.i.attn.linear_{q,k,v}.{u,w,bias,u_temperature}, proj_v.*   (same layout, no transpose)
  blocks.i.attn.vanilla_attention.*          -> blocks_i/attn/local_attention/*     (FrameDiT-H)
  blocks.i.attn.matrix_attention.*           -> blocks_i/attn/matrix_attention/*    (FrameDiT-H)
  blocks.i.attn.norm_{local,global}.weight   -> .../scale ; output_linear, alpha, gamma_{local,global}
  final_layer.{adaLN_modulation.1,linear}.*  -> final_layer/{adaLN_modulation,linear}/*

`pos_embed` / `temp_embed` (frozen sin-cos) are checked against our constants and dropped; the identity-U buffer
(`u_type='identity'`) is checked to be I and dropped. Every other key must map one to one: missing, unexpected or
mis-shaped keys raise one `WeightsError` listing them (`framedit_jax.convert.weights.to_flax`, the walker every
converter uses). `module.` / `_orig_mod.` prefixes are stripped.
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from framedit_jax.convert import weights
from framedit_jax.models import get_model, model_config
from framedit_jax.models.embeddings import get_1d_sincos_temp_embed, get_2d_sincos_pos_embed


def infer_overrides(state_dict: Mapping[str, Any], model_name: str) -> dict[str, Any]:
  """Reads input_size, num_frames, in_channels, num_classes, class_dropout_prob and learn_sigma off the tensors.

  Uses `pos_embed (1, N, D)`, `temp_embed (1, T, D)`, `x_embedder.proj.weight (D, C, p, p)`,
  `final_layer.linear.weight (p*p*C_out, D)` and `y_embedder.embedding_table.weight (num_classes + 1, D)` (the
  table is assumed to hold a null row, i.e. class_dropout_prob > 0, as in every official config).
  """
  sd = weights.strip_prefixes(state_dict)
  p = model_config(model_name)['patch_size']
  out = {}
  if 'x_embedder.proj.weight' in sd:
    w = sd['x_embedder.proj.weight']
    out['in_channels'] = int(w.shape[1])
    p = int(w.shape[2])
  if 'pos_embed' in sd:
    n = int(sd['pos_embed'].shape[1])
    out['input_size'] = int(round(np.sqrt(n))) * p
  if 'temp_embed' in sd:
    out['num_frames'] = int(sd['temp_embed'].shape[1])
  if 'final_layer.linear.weight' in sd and 'in_channels' in out:
    c_out = int(sd['final_layer.linear.weight'].shape[0]) // (p * p)
    out['learn_sigma'] = c_out == 2 * out['in_channels']
  if 'y_embedder.embedding_table.weight' in sd:
    out['num_classes'] = int(sd['y_embedder.embedding_table.weight'].shape[0]) - 1
  else:
    out['num_classes'] = 0
  return out


def _torch_key(path: tuple[str, ...]) -> tuple[str, str]:
  """Flax param path -> (official key, transform) where transform is 'dense', 'conv' or 'copy'."""
  parts = []
  for name in path[:-1]:
    if name.startswith('blocks_'):
      parts += ['blocks', name.split('_', 1)[1]]
    elif name in ('mlp_0', 'mlp_2'):
      parts += ['mlp', name.split('_')[1]]
    elif name == 'adaLN_modulation':
      parts += ['adaLN_modulation', '1']
    elif name == 'local_attention':
      parts.append('vanilla_attention')
    else:
      parts.append(name)
  leaf = path[-1]
  transform = 'copy'
  if leaf == 'kernel':
    transform = 'conv' if path[-2] == 'proj' and path[0] == 'x_embedder' else 'dense'
    leaf = 'weight'
  elif leaf in ('scale', 'embedding'):
    leaf = 'weight'
  return '.'.join(parts + [leaf]), transform


def convert_state_dict(state_dict: Mapping[str, Any], model_name: str, check_embeddings: bool = True,
                       **overrides: Any) -> dict[str, Any]:
  """Maps an official PyTorch state_dict (model or EMA) to framedit_jax params for `get_model(model_name, ...)`.

  Args:
    state_dict: name -> tensor/array, e.g. `torch.load(path)['ema']`.
    model_name: official registry name, e.g. 'FrameDiTH-XL/128-512/2-concat' (see `list_models()`).
    check_embeddings: compare the checkpoint's frozen `pos_embed`/`temp_embed` with our sin-cos constants.
    **overrides: `get_model` overrides; input_size, num_frames, in_channels, num_classes and learn_sigma default to
      what the tensors imply (`infer_overrides`).

  Returns:
    Nested dict of float32 numpy arrays with exactly the structure of `get_model(model_name, **o).init(...)`.

  Raises:
    ValueError: missing keys, unexpected keys or shape mismatches (all listed in one message).
  """
  sd = weights.numpy_state_dict(weights.strip_prefixes(state_dict))
  cfg = {**infer_overrides(sd, model_name), **overrides}
  module = get_model(model_name, **cfg)
  b, t = 1, module.num_frames + module.use_image_num
  x = jax.ShapeDtypeStruct((b, t, module.input_size, module.input_size, module.in_channels), jnp.float32)
  tt = jax.ShapeDtypeStruct((b,), jnp.int32)
  yy = jax.ShapeDtypeStruct((b,), jnp.int32) if module.num_classes > 0 else None
  shapes = jax.eval_shape(lambda x, t, y: module.init({'params': jax.random.PRNGKey(0)}, x, t, y)['params'],
                          x, tt, yy)
  problems = []
  d = module.hidden_size
  grid = module.input_size // module.patch_size
  frozen = {'pos_embed': get_2d_sincos_pos_embed(d, grid)[None],
            'temp_embed': get_1d_sincos_temp_embed(d, module.num_frames)[None]}
  for key, ref in frozen.items():
    if key in sd:
      value = sd.pop(key)
      if value.shape != ref.shape:
        problems.append(f'{key} {value.shape} != {ref.shape} (input_size / num_frames)')
      elif check_embeddings and not np.allclose(value, ref, atol=1e-4):
        problems.append(f'{key} differs from the fixed sin-cos embedding by {np.abs(value - ref).max():.3g}')
  if getattr(module, 'u_type', 'param') == 'identity':
    names = _torch_names(shapes)
    for key in [k for k in sd if k.endswith('.u')]:
      if key not in names:
        value = sd.pop(key)
        if not np.array_equal(value, np.eye(value.shape[0], dtype=np.float32)):
          problems.append(f'{key} is not the identity buffer of u_type=identity')
  return official_to_flax(sd, shapes, f'convert_state_dict({model_name!r})', problems)


def _torch_names(shapes: Mapping[str, Any]) -> dict[str, tuple[tuple[str, ...], str]]:
  """`{official key: (flax path, layout)}` for every leaf of a params tree of the official modules."""
  return {_torch_key(path)[0]: (path, 'copy' if _torch_key(path)[1] == 'copy' else 'kernel')
          for path in weights.flat_shapes(shapes)}


def official_to_flax(state_dict: Mapping[str, Any], shapes: Mapping[str, Any], what: str,
                     problems: list[str] = ()) -> dict[str, Any]:
  """`weights.to_flax` with the official DiT / Latte / FrameDiT key names (`_torch_key`); missing params are named
  by the official key they are read from."""
  names = _torch_names(shapes)
  return weights.to_flax(state_dict, shapes, names.get, what, name_of_missing=lambda p: _torch_key(p)[0],
                         problems=problems)

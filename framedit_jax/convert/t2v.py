"""diffusers-format LatteT2V (Latte-1 `transformer/`) and official FrameDiT-H-T2V state_dicts -> Flax params.

Torch key -> our param path, e.g.
  pos_embed.proj.weight (D, C, p, p)                        pos_embed/proj/kernel (p, p, C, D)
  transformer_blocks.3.attn2.to_out.0.weight (D, D)          transformer_blocks_3/attn2/to_out_0/kernel (transposed)
  temporal_transformer_blocks.0.ff.net.0.proj.bias          temporal_transformer_blocks_0/ff/net_0_proj/bias
  adaln_single.emb.timestep_embedder.linear_1.weight        adaln_single/linear_1/kernel
  temporal_transformer_blocks.0.attn1.matrix_attention.linear_q.u      .../attn1/matrix_attention/linear_q/u
  temporal_transformer_blocks.0.attn1.norm_local.weight     .../attn1/norm_local/scale
`*.scale_shift_table`, MatrixLinear `u`, `w`, `bias_col`, `bias_row` are copied as they are. Buffers the official
code may save (`pos_embed.pos_embed`, `temp_pos_embed`) are recomputed here and ignored.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from framedit_jax.convert.weights import PREFIXES as _READER_PREFIXES
from framedit_jax.convert.weights import (SKIP, flatten, numpy_state_dict, read_state_dict, strip_prefixes, to_flax,
                                          unflatten)

_BUFFERS = ('pos_embed.pos_embed', 'temp_pos_embed')
PREFIXES = _READER_PREFIXES + ('base_model.model.',)  # + peft


def _path(key: str) -> Any:
  """Torch key -> (our path, layout) with layout 'kernel' (Linear / Conv weight) or 'copy'; SKIP for a buffer."""
  parts = key.split('.')
  leaf = parts[-1]
  name = '.'.join(parts[:-1])
  name = re.sub(r'(transformer_blocks)\.(\d+)', r'\1_\2', name)
  name = name.replace('to_out.0', 'to_out_0').replace('ff.net.0.proj', 'ff.net_0_proj').replace('ff.net.2',
                                                                                                  'ff.net_2')
  name = name.replace('adaln_single.emb.timestep_embedder.', 'adaln_single.')
  path = tuple(name.split('.')) if name else ()
  if key in _BUFFERS:
    return SKIP
  if leaf == 'scale_shift_table' or leaf in ('u', 'w', 'bias_col', 'bias_row', 'bias') and 'matrix_attention' in name:
    return path + (leaf,), 'copy'
  if path and path[-1] in ('norm_local', 'norm_global'):
    return path + ({'weight': 'scale', 'bias': 'bias'}.get(leaf, leaf),), 'copy'
  return path + ({'weight': 'kernel', 'bias': 'bias'}.get(leaf, leaf),), 'kernel' if leaf == 'weight' else 'copy'


def merge_peft_lora(state_dict: Mapping[str, Any], lora_scale: float | None) -> dict[str, np.ndarray]:
  """Folds peft LoRA keys (`X.base_layer.weight`, `X.lora_A.<name>.weight` (r, in), `X.lora_B.<name>.weight`
  (out, r)) into `X.weight = W + lora_scale * B A`; other keys pass through. Official LoRA runs save these.

  Raises:
    ValueError: LoRA keys present but `lora_scale` (= lora_alpha / r; official 32 / 32 = 1) not given, or an
      A without its B.
  """
  sd = numpy_state_dict(state_dict)
  lora_keys = [k for k in sd if '.lora_A.' in k or '.lora_B.' in k]
  if not lora_keys and not any('.base_layer.' in k for k in sd):
    return sd
  if lora_keys and lora_scale is None:
    raise ValueError('checkpoint holds peft LoRA weights; pass lora_scale = lora_alpha / r (official 32/32 = 1.0).')
  out = {k.replace('.base_layer.', '.'): v for k, v in sd.items() if k not in lora_keys}
  for k in lora_keys:
    if '.lora_A.' not in k:
      continue
    base, rest = k.split('.lora_A.', 1)
    kb = f'{base}.lora_B.{rest}'
    if kb not in sd:
      raise ValueError(f'LoRA key {k} has no matching {kb}.')
    out[f'{base}.weight'] = out[f'{base}.weight'] + np.float32(lora_scale) * (sd[kb] @ sd[k])
  return out


def convert_t2v_state_dict(state_dict: Mapping[str, Any], module: Any, sample_inputs: tuple[Any, ...],
                           lora_scale: float | None = None) -> dict:
  """Maps a torch state_dict onto the params of `module` (a `LatteT2V` or `FrameDiTHT2V`).

  Args:
    state_dict: torch key -> array (numpy or torch tensors); peft LoRA keys are merged (`merge_peft_lora`).
    module: the Flax module the params are for (its shapes are taken from `jax.eval_shape(module.init, ...)`).
    sample_inputs: `(x, t, text)` arrays with the model's shapes (only shapes matter).
    lora_scale: lora_alpha / r, needed only when the checkpoint holds LoRA weights.

  Returns:
    Nested dict of float32 numpy arrays.

  Raises:
    WeightsError (a ValueError): missing or unexpected keys, or shape mismatches (one line, `to_flax`).
  """
  target = jax.eval_shape(lambda: module.init(jax.random.key(0), *sample_inputs))['params']
  sd = merge_peft_lora(strip_prefixes(state_dict, PREFIXES), lora_scale)
  return to_flax(sd, target, _path, f'T2V state_dict for {type(module).__name__}',
                         hint='pass the checkpoint of this architecture (name / config.json)')


def load_transformer_folder(folder: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
  """Reads a diffusers `transformer/` folder: `(config.json dict, state_dict)`.

  Weights: `diffusion_pytorch_model*.safetensors` (sharded or not), else `*.bin` (`read_state_dict`).

  Raises:
    FileNotFoundError: the folder, its config.json or its weights are missing (one line naming the folder).
  """
  cfg_path = os.path.join(folder, 'config.json')
  if not os.path.isfile(cfg_path):
    raise FileNotFoundError(f'transformer folder {folder} with config.json not found; pass the checkpoint\'s '
                            '`transformer/` folder (e.g. Latte-1/transformer).')
  with open(cfg_path) as f:
    cfg = json.load(f)
  return cfg, read_state_dict(folder, 'transformer folder', prefixes=PREFIXES)


def sample_inputs(module: Any, frames: int | None = None) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Dummy `(x, t, text)` with the module's shapes (for `convert_t2v_state_dict` / `init`)."""
  f = frames or module.video_length
  s = module.sample_size
  return (jnp.zeros((1, f, s, s, module.in_channels)), jnp.zeros((1,), jnp.int32),
          jnp.zeros((1, 4, module.caption_channels)))


def load_latte_t2v(folder: str, video_length: int | None = None, dtype: Any = jnp.float32):
  """`(LatteT2V module, params)` from a diffusers-format `transformer/` folder (Latte-1).

  Args:
    folder: holds config.json and diffusion_pytorch_model*.safetensors (or .bin).
    video_length: overrides config.json's (the official loader passes `video_length=args.video_length`).
    dtype: module compute dtype.

  Raises:
    FileNotFoundError: folder / config / weights missing. ValueError: unsupported config or key mismatch.
  """
  from framedit_jax.models.t2v import LatteT2V, config_from_diffusers  # pylint: disable=g-import-not-at-top
  cfg, sd = load_transformer_folder(folder)
  kwargs = config_from_diffusers(cfg)
  if video_length is not None:
    kwargs['video_length'] = int(video_length)
  module = LatteT2V(**kwargs, dtype=dtype)
  return module, convert_t2v_state_dict(sd, module, sample_inputs(module))


def load_official_t2v_checkpoint(path: str, name: str = 'FrameDiTHT2V-XL/256-2-1-2-concat', weights: str = 'ema',
                                 lora_scale: float | None = None, **overrides: Any):
  """`(module, params)` from an official T2V training checkpoint (`{'model', 'ema', 'train_steps'}` .pt, a bare
  state_dict .pt/.bin, or .safetensors).

  Read by `framedit_jax.convert.weights.read_state_dict` (torch imported only for .pt/.bin, `weights_only=True`);
  `weights` is 'ema' or 'model'. `_orig_mod.` / `module.` / peft prefixes are stripped. `name` picks the
  architecture (`get_t2v_model`), overrides adjust it.

  Raises:
    FileNotFoundError: no file at `path`. ValueError: missing/unexpected keys or shape mismatches.
  """
  from framedit_jax.models.t2v import get_t2v_model  # pylint: disable=g-import-not-at-top
  sd = read_state_dict(path, 'T2V checkpoint', weights=weights, prefixes=PREFIXES,
                       hint='pass an official .pt (e.g. checkpoints/0005000.pt).')
  module = get_t2v_model(name, **overrides)
  return module, convert_t2v_state_dict(sd, module, sample_inputs(module), lora_scale)


def init_framedit_h_from_latte(latte_params: Mapping[str, Any], framedit_params: Mapping[str, Any]) -> dict:
  """Latte-1 params -> FrameDiT-H-T2V params (official `load_pretrained_latte_into_framedith`).

  Every FrameDiT-H-T2V leaf with the same path and shape in Latte is copied; the temporal blocks' Latte
  `attn1/*` goes to the local branch `attn1/attention/*`; the Matrix Attention branch and the fusion (norms,
  output_linear, gates) keep their values from `framedit_params` (fresh init).

  Returns:
    New nested dict (same structure as `framedit_params`).
  """
  src, dst = flatten(latte_params), flatten(framedit_params)
  out = {}
  for path, value in dst.items():
    key = path
    if path[0].startswith('temporal_transformer_blocks') and path[1:3] == ('attn1', 'attention'):
      key = path[:2] + path[3:]
    if key in src and tuple(np.shape(src[key])) == tuple(np.shape(value)):
      out[path] = src[key]
    else:
      out[path] = value
  return unflatten(out)

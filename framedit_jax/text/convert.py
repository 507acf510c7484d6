"""Hugging Face T5 encoder weights (`text_encoder/` folder or file) -> `T5Encoder` params.

Key names (transformers `T5EncoderModel.state_dict()`, torch `Linear.weight` is `(out, in)`):
  shared.weight / encoder.embed_tokens.weight            (vocab, d_model)   (tied: either one suffices)
  encoder.block.{i}.layer.0.SelfAttention.{q,k,v,o}.weight
  encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight   (num_buckets, heads)
  encoder.block.{i}.layer.0.layer_norm.weight
  encoder.block.{i}.layer.1.DenseReluDense.{wi_0,wi_1,wo}.weight
  encoder.block.{i}.layer.1.layer_norm.weight
  encoder.final_layer_norm.weight
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Mapping

import numpy as np

from framedit_jax.convert.weights import SKIP, read_state_dict, to_flax
from framedit_jax.text.t5 import T5Config

_IGNORED_PREFIXES = ('decoder.', 'lm_head.')


def _t5_path(key: str) -> Any:
  """transformers T5 encoder key -> (our param path, layout); SKIP for decoder / lm_head; None if unknown."""
  if key.startswith(_IGNORED_PREFIXES):
    return SKIP
  if key in ('shared.weight', 'encoder.embed_tokens.weight'):
    return ('shared', 'embedding'), 'copy'
  if key == 'encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight':
    return ('relative_attention_bias',), 'copy'
  if key == 'encoder.final_layer_norm.weight':
    return ('final_norm', 'weight'), 'copy'
  m = re.fullmatch(r'encoder\.block\.(\d+)\.layer\.([01])\.(SelfAttention\.[qkvo]|DenseReluDense\.\w+|layer_norm)\.weight',
                   key)
  if not m:
    return None
  block, sub, name = f'block_{m.group(1)}', m.group(2), m.group(3)
  if name == 'layer_norm':
    return (block, 'attn_norm' if sub == '0' else 'mlp_norm', 'weight'), 'copy'
  if name.startswith('SelfAttention.'):
    return (block, 'attn', name.split('.')[1], 'kernel'), 'kernel'
  return (block, name.split('.')[1], 'kernel'), 'kernel'


def t5_param_shapes(config: T5Config) -> dict[tuple[str, ...], tuple[int, ...]]:
  """`{param path: shape}` of `T5Encoder(config)` (from `config`, nothing traced)."""
  c = config
  inner = c.num_heads * c.d_kv
  out = {('shared', 'embedding'): (c.vocab_size, c.d_model),
         ('relative_attention_bias',): (c.relative_attention_num_buckets, c.num_heads),
         ('final_norm', 'weight'): (c.d_model,)}
  for i in range(c.num_layers):
    b = f'block_{i}'
    out.update({(b, 'attn_norm', 'weight'): (c.d_model,), (b, 'mlp_norm', 'weight'): (c.d_model,),
                (b, 'wi_0', 'kernel'): (c.d_model, c.d_ff), (b, 'wi_1', 'kernel'): (c.d_model, c.d_ff),
                (b, 'wo', 'kernel'): (c.d_ff, c.d_model)})
    out.update({(b, 'attn', n, 'kernel'): (c.d_model, inner) if n != 'o' else (inner, c.d_model) for n in 'qkvo'})
  return out


def convert_t5_state_dict(state_dict: Mapping[str, Any], config: T5Config) -> dict[str, Any]:
  """Maps a transformers T5 (encoder) state_dict to `T5Encoder(config)` params (float32 numpy).

  Decoder / lm_head keys are ignored (a full T5ForConditionalGeneration checkpoint works); the tied
  `encoder.embed_tokens.weight` is used only when `shared.weight` is absent.

  Raises:
    WeightsError (a ValueError): missing or unexpected encoder keys, or shapes that disagree with `config`, in
      one line (`framedit_jax.convert.weights.to_flax`).
  """
  sd = dict(state_dict)
  if 'shared.weight' in sd:
    sd.pop('encoder.embed_tokens.weight', None)
  names = {v[0]: k for k, v in ((k, _t5_path(k)) for k in _all_t5_keys(config)) if isinstance(v, tuple)}
  return to_flax(sd, t5_param_shapes(config), _t5_path, 'T5 state_dict', name_of_missing=names.get,
                 hint='pass the text_encoder/ folder whose config.json it was saved with')


def _all_t5_keys(config: T5Config) -> list[str]:
  keys = ['shared.weight', 'encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight',
          'encoder.final_layer_norm.weight']
  for i in range(config.num_layers):
    pre = f'encoder.block.{i}.layer.'
    keys += [f'{pre}0.SelfAttention.{n}.weight' for n in 'qkvo'] + [f'{pre}0.layer_norm.weight',
                                                                     f'{pre}1.layer_norm.weight']
    keys += [f'{pre}1.DenseReluDense.{n}.weight' for n in ('wi_0', 'wi_1', 'wo')]
  return keys


def read_t5_config(folder: str) -> T5Config:
  """`T5Config` from `<folder>/config.json`.

  Raises:
    FileNotFoundError: the folder or its config.json is missing (one line naming the folder expected).
  """
  path = os.path.join(folder, 'config.json')
  if not os.path.isfile(path):
    raise FileNotFoundError(f'text encoder folder {folder} (with config.json and *.safetensors) not found; pass the '
                            "checkpoint's `text_encoder/` folder (e.g. Latte-1/text_encoder).")
  with open(path) as f:
    return T5Config.from_dict(json.load(f))


def load_t5_encoder(folder: str) -> tuple[T5Config, dict[str, Any]]:
  """`(config, params)` from a Hugging Face `text_encoder/` folder (config.json + safetensors/bin weights)."""
  config = read_t5_config(folder)
  return config, convert_t5_state_dict(read_state_dict(folder, 'text_encoder folder'), config)


def t5_params_to_hf(params: Mapping[str, Any], config: T5Config) -> dict[str, np.ndarray]:
  """Inverse of `convert_t5_state_dict`: `T5Encoder` params -> transformers encoder key names (float32 numpy)."""
  sd = {'shared.weight': np.asarray(params['shared']['embedding'], np.float32),
        'encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight':
            np.asarray(params['relative_attention_bias'], np.float32),
        'encoder.final_layer_norm.weight': np.asarray(params['final_norm']['weight'], np.float32)}
  for i in range(config.num_layers):
    p, pre = params[f'block_{i}'], f'encoder.block.{i}.layer.'
    for n in ('q', 'k', 'v', 'o'):
      sd[f'{pre}0.SelfAttention.{n}.weight'] = np.asarray(p['attn'][n]['kernel'], np.float32).T
    sd[f'{pre}0.layer_norm.weight'] = np.asarray(p['attn_norm']['weight'], np.float32)
    sd[f'{pre}1.layer_norm.weight'] = np.asarray(p['mlp_norm']['weight'], np.float32)
    for n in ('wi_0', 'wi_1', 'wo'):
      sd[f'{pre}1.DenseReluDense.{n}.weight'] = np.asarray(p[n]['kernel'], np.float32).T
  return {k: np.ascontiguousarray(v) for k, v in sd.items()}

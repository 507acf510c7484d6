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

import glob
import json
import os
from typing import Any, Mapping

import numpy as np

from framedit_jax.text.t5 import T5Config

_IGNORED_PREFIXES = ('decoder.', 'lm_head.')


def load_torch_state_dict(path: str, what: str = 'text_encoder') -> dict[str, np.ndarray]:
  """Reads a checkpoint: a folder (sharded or single `*.safetensors`, else `*.bin`), or one file.

  `.safetensors` are read with safetensors.numpy (no torch); `.bin`/`.pt` with `torch.load(weights_only=True)`
  (torch imported here only). bf16 tensors are returned as float32. `what` names the expected folder in errors.

  Raises:
    FileNotFoundError: no weight file at `path` (one line naming the folder and the files expected).
  """
  if os.path.isdir(path):
    files = sorted(glob.glob(os.path.join(path, '*.safetensors'))) or sorted(glob.glob(os.path.join(path, '*.bin')))
    if not files:
      raise FileNotFoundError(f'{what} folder {path} has no *.safetensors or *.bin weights; expected the '
                              f"checkpoint's `{what}/` folder (e.g. Latte-1/{what}).")
  elif os.path.isfile(path):
    files = [path]
  else:
    raise FileNotFoundError(f'{what} {path} not found; expected a `{what}/` folder with config.json and '
                            '*.safetensors.')
  sd = {}
  for f in files:
    if f.endswith('.safetensors'):
      from safetensors import safe_open  # pylint: disable=g-import-not-at-top
      with safe_open(f, framework='flax') as reader:  # jax arrays: handles bf16, unlike the numpy framework
        for k in reader.keys():
          sd[k] = np.asarray(reader.get_tensor(k).astype('float32'))
    else:
      import torch  # pylint: disable=g-import-not-at-top
      for k, v in torch.load(f, map_location='cpu', weights_only=True).items():
        sd[k] = v.float().numpy()
  return sd


def convert_t5_state_dict(state_dict: Mapping[str, Any], config: T5Config) -> dict[str, Any]:
  """Maps a transformers T5 (encoder) state_dict to `T5Encoder(config)` params (float32 numpy).

  Decoder / lm_head keys are ignored (a full T5ForConditionalGeneration checkpoint works).

  Raises:
    ValueError: missing or unexpected encoder keys, or a shape that disagrees with `config` (one line listing them).
  """
  sd = {k: np.asarray(v, np.float32) for k, v in state_dict.items() if not k.startswith(_IGNORED_PREFIXES)}
  used, missing, params = set(), [], {}

  def take(key, transpose=False, shape=None):
    if key not in sd:
      missing.append(key)
      return None
    used.add(key)
    v = sd[key].T if transpose else sd[key]
    if shape is not None and v.shape != shape:
      raise ValueError(f'T5 weight {key} has shape {sd[key].shape}; config expects {shape[::-1] if transpose else shape}.')
    return v

  c = config
  inner = c.num_heads * c.d_kv
  emb_key = 'shared.weight' if 'shared.weight' in sd else 'encoder.embed_tokens.weight'
  params['shared'] = {'embedding': take(emb_key, shape=(c.vocab_size, c.d_model))}
  used.update(k for k in ('shared.weight', 'encoder.embed_tokens.weight') if k in sd)
  params['relative_attention_bias'] = take('encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight',
                                           shape=(c.relative_attention_num_buckets, c.num_heads))
  for i in range(c.num_layers):
    pre = f'encoder.block.{i}.layer.'
    attn = {n: {'kernel': take(f'{pre}0.SelfAttention.{n}.weight', True, (c.d_model, inner) if n != 'o' else
                               (inner, c.d_model))} for n in ('q', 'k', 'v', 'o')}
    params[f'block_{i}'] = {
        'attn_norm': {'weight': take(f'{pre}0.layer_norm.weight', shape=(c.d_model,))},
        'attn': attn,
        'mlp_norm': {'weight': take(f'{pre}1.layer_norm.weight', shape=(c.d_model,))},
        'wi_0': {'kernel': take(f'{pre}1.DenseReluDense.wi_0.weight', True, (c.d_model, c.d_ff))},
        'wi_1': {'kernel': take(f'{pre}1.DenseReluDense.wi_1.weight', True, (c.d_model, c.d_ff))},
        'wo': {'kernel': take(f'{pre}1.DenseReluDense.wo.weight', True, (c.d_ff, c.d_model))},
    }
  params['final_norm'] = {'weight': take('encoder.final_layer_norm.weight', shape=(c.d_model,))}
  unexpected = sorted(set(sd) - used)
  if missing or unexpected:
    raise ValueError(f'T5 state_dict: missing {missing[:8]}{"..." if len(missing) > 8 else ""}; '
                     f'unexpected {unexpected[:8]}{"..." if len(unexpected) > 8 else ""}.')
  return params


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
  return config, convert_t5_state_dict(load_torch_state_dict(folder), config)


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

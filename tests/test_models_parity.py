"""Converted official checkpoints reproduce the official PyTorch outputs (fixture from tools/parity_official.py).

The fixture holds small random official state_dicts (4-bit codes * scale + offset, exact in float32), inputs and
the outputs of the official torch modules (fp32, CPU, eval mode). No torch or official code is needed here.
"""

import json
import os

import jax.numpy as jnp
import numpy as np
import pytest

from framedit_jax.convert.official import convert_state_dict
from framedit_jax.models import get_model

FIXTURE = os.path.join(os.path.dirname(__file__), 'fixtures', 'models', 'official_parity.npz')


def _unpack_nibbles(packed: np.ndarray, shape) -> np.ndarray:
  n = int(np.prod(shape))
  u = np.empty(packed.size * 2, np.int16)
  u[0::2] = packed & 0xF
  u[1::2] = packed >> 4
  return (u[:n] - 8).astype(np.int8).reshape(shape)


@pytest.fixture(scope='module')
def fixture():
  data = np.load(FIXTURE)
  meta = json.loads(bytes(data['__meta__']).decode())
  return data, meta


def _state_dict(data, case, meta):
  sd = {}
  for key, shape in meta['coded'].items():
    scale, offset = data[f'{case}|s|{key}']
    codes = _unpack_nibbles(data[f'{case}|q|{key}'], shape)
    sd[key] = codes.astype(np.float32) * np.float32(scale) + np.float32(offset)
  for key in meta['raw']:
    sd[key] = data[f'{case}|r|{key}']
  return sd


CASES = ['latte', 'dit3d', 'framedit_g', 'framedit_g_softmax_u', 'framedit_h_concat', 'framedit_h_gated',
         'framedit_h_img']


@pytest.mark.parametrize('case', CASES)
def test_converted_official_weights_match_official_output(fixture, case):
  data, meta = fixture
  m = meta[case]
  sd = _state_dict(data, case, m)
  params = convert_state_dict(sd, m['name'], **m['overrides'])
  module = get_model(m['name'], **m['overrides'])
  x = jnp.asarray(data[f'{case}|xq'].astype(np.float32) / np.float32(32.0))
  y = jnp.asarray(data[f'{case}|y']) if m['conditional'] else None
  out = np.asarray(module.apply({'params': params}, x, jnp.asarray(data[f'{case}|t']), y))
  expected = data[f'{case}|out']
  assert out.shape == expected.shape
  assert np.abs(expected).max() > 1.0  # the random official model is far from the zero init
  np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5)


def test_converter_lists_missing_and_unexpected_keys(fixture):
  data, meta = fixture
  m = meta['framedit_h_concat']
  sd = _state_dict(data, 'framedit_h_concat', m)
  del sd['blocks.1.attn.matrix_attention.linear_v.u']
  sd['blocks.1.attn.extra.weight'] = np.zeros(3, np.float32)
  with pytest.raises(ValueError, match=r': 1 missing \[blocks\.1\.attn\.matrix_attention\.linear_v\.u\]; 1 unexpected '
                                       r'\[blocks\.1\.attn\.extra\.weight\]\.$'):
    convert_state_dict(sd, m['name'], **m['overrides'])


def test_converter_infers_sizes_and_strips_ddp_prefix(fixture):
  data, meta = fixture
  m = meta['latte']
  sd = {'module.' + k: v for k, v in _state_dict(data, 'latte', m).items()}
  arch = {k: m['overrides'][k] for k in ('depth', 'hidden_size', 'num_heads')}
  params = convert_state_dict(sd, m['name'], **arch)  # input_size, num_frames, num_classes inferred
  assert params['y_embedder']['embedding_table']['embedding'].shape == (6, 32)
  np.testing.assert_array_equal(params['blocks_1']['attn']['qkv']['kernel'],
                                sd['module.blocks.1.attn.qkv.weight'].T)
  with pytest.raises(ValueError, match='temp_embed'):
    convert_state_dict(sd, m['name'], num_frames=8, **arch)


def test_checkpoint_files_roundtrip_to_orbax(fixture, tmp_path):
  """.safetensors and an official-style .pt {'model', 'ema', 'optimizer', ...} -> orbax {'params'} -> same output."""
  from safetensors.numpy import save_file
  from framedit_jax.convert import checkpoint_io
  data, meta = fixture
  m = meta['framedit_g']
  sd = _state_dict(data, 'framedit_g', m)
  arch = {k: v for k, v in m['overrides'].items() if k not in ('input_size', 'num_frames', 'num_classes')}
  save_file(sd, str(tmp_path / 'w.safetensors'))
  from framedit_jax.convert import weights
  out_dir = checkpoint_io.convert_and_save(weights.read_state_dict(str(tmp_path / 'w.safetensors')),
                                           m['name'], str(tmp_path / 'jax'), weights='state_dict', **arch)
  params, saved = checkpoint_io.load_params(out_dir)
  assert saved['model_name'] == m['name'] and saved['overrides']['num_classes'] == 5
  module = get_model(saved['model_name'], **saved['overrides'])
  x = jnp.asarray(data['framedit_g|xq'].astype(np.float32) / np.float32(32.0))
  out = module.apply({'params': params}, x, jnp.asarray(data['framedit_g|t']), jnp.asarray(data['framedit_g|y']))
  np.testing.assert_allclose(out, data['framedit_g|out'], rtol=0, atol=1e-5)
  with pytest.raises(FileExistsError):
    checkpoint_io.save_params(params, out_dir, m['name'])

  import torch
  ckpt = {'model': {k: torch.zeros(v.shape) for k, v in sd.items()},
          'ema': {k: torch.from_numpy(v) for k, v in sd.items()},
          'optimizer': {'state': {}, 'param_groups': [{'lr': 1e-4}]}, 'lr_scheduler': None, 'train_steps': 7}
  torch.save(ckpt, tmp_path / 'c.pt')
  loaded = torch.load(tmp_path / 'c.pt', map_location='cpu', weights_only=True)
  picked, which = weights.select_state_dict(loaded, 'ema')
  assert which == 'ema'
  np.testing.assert_array_equal(picked['blocks.1.attn.linear_v.u'].numpy(), sd['blocks.1.attn.linear_v.u'])
  picked, which = weights.select_state_dict({'model': loaded['model'], 'ema': None}, 'ema')
  assert which == 'model'  # no EMA saved: raw weights, like the official find_model

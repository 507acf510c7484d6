"""Image DiT: converted official DiT weights reproduce the official forward (fixture from tools/parity_dit.py)."""

import json
import os

import jax.numpy as jnp
import numpy as np
import pytest

from framedit_jax.convert.image_dit import convert_dit_state_dict, load_dit_checkpoint
from framedit_jax.models.image_dit import get_image_dit, list_image_dits

FIXTURE = os.path.join(os.path.dirname(__file__), 'fixtures', 'models', 'dit_parity.npz')


def _unpack(packed, shape):
  n = int(np.prod(shape))
  u = np.empty(packed.size * 2, np.int16)
  u[0::2], u[1::2] = packed & 0xF, packed >> 4
  return (u[:n] - 8).astype(np.int8).reshape(shape)


@pytest.fixture(scope='module')
def fixture():
  data = np.load(FIXTURE)
  return data, json.loads(bytes(data['__meta__']).decode())


def dit_state_dict(data, meta, case):
  m = meta[case]
  sd = {}
  for key, shape in m['coded'].items():
    scale, offset = data[f'{case}|s|{key}']
    sd[key] = _unpack(data[f'{case}|q|{key}'], shape).astype(np.float32) * np.float32(scale) + np.float32(offset)
  for key in m['raw']:
    sd[key] = data[f'{case}|r|{key}']
  return sd


@pytest.mark.parametrize('case', ['dit_class', 'dit_p4_nosigma'])
def test_converted_dit_matches_official_forward(fixture, case):
  data, meta = fixture
  m = meta[case]
  sd = dit_state_dict(data, meta, case)
  params = convert_dit_state_dict(sd, m['name'], **m['overrides'])
  module = get_image_dit(m['name'], **m['overrides'])
  x = jnp.asarray(data[f'{case}|xq'].astype(np.float32) / np.float32(32.0))
  out = np.asarray(module.apply({'params': params}, x, jnp.asarray(data[f'{case}|t']), jnp.asarray(data[f'{case}|y'])))
  expected = data[f'{case}|out']
  assert np.abs(expected).max() > 1.0  # far from the zero init
  np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5)


def test_converter_lists_keys_and_reads_files(fixture, tmp_path):
  data, meta = fixture
  m = meta['dit_class']
  sd = dit_state_dict(data, meta, 'dit_class')
  arch = {k: m['overrides'][k] for k in ('depth', 'hidden_size', 'num_heads')}
  bad = dict(sd)
  del bad['blocks.1.mlp.fc2.bias']
  bad['blocks.1.extra'] = np.zeros(2, np.float32)
  with pytest.raises(ValueError, match=r'1 missing \[blocks\.1\.mlp\.fc2\.bias\]; 1 unexpected \[blocks\.1\.extra\]'):
    convert_dit_state_dict(bad, m['name'], **arch)
  with pytest.raises(ValueError, match='patch size 2'):
    convert_dit_state_dict(sd, 'DiT-S/4', **arch)
  # .pt (bare state_dict, as the released DiT-XL-2-256x256.pt) and .safetensors give the same params; sizes inferred
  import torch
  from safetensors.numpy import save_file
  torch.save({'module.' + k: torch.from_numpy(v) for k, v in sd.items()}, tmp_path / 'DiT.pt')
  save_file(sd, str(tmp_path / 'DiT.safetensors'))
  ref = convert_dit_state_dict(sd, m['name'], **m['overrides'])
  for f in ('DiT.pt', 'DiT.safetensors'):
    params = convert_dit_state_dict(load_dit_checkpoint(str(tmp_path / f)), m['name'], **arch)
    np.testing.assert_array_equal(params['blocks_1']['attn']['qkv']['kernel'], ref['blocks_1']['attn']['qkv']['kernel'])
    assert params['y_embedder']['embedding_table']['embedding'].shape == (11, 32)
  with pytest.raises(FileNotFoundError, match='DiT checkpoint .*nope.pt.*no such file'):
    load_dit_checkpoint(str(tmp_path / 'nope.pt'))


def test_names_and_errors():
  assert 'DiT-XL/2' in list_image_dits() and len(list_image_dits()) == 12
  xl = get_image_dit('DiT-XL/2')
  assert (xl.depth, xl.hidden_size, xl.num_heads, xl.patch_size) == (28, 1152, 16, 2)
  with pytest.raises(KeyError, match='DiT-XL/2'):
    get_image_dit('DiT-XL2')
  with pytest.raises(TypeError, match='temporal'):
    get_image_dit('DiT-S/2', temporal='local')
  module = get_image_dit('DiT-S/2', depth=1, hidden_size=32, num_heads=2, input_size=8, num_classes=3)
  with pytest.raises(ValueError, match='y \\(class labels\\)'):
    module.init({'params': __import__('jax').random.PRNGKey(0)}, jnp.zeros((1, 8, 8, 4)), jnp.zeros((1,), jnp.int32))

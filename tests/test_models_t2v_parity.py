"""Converted official LatteT2V / FrameDiT-H-T2V weights reproduce the official PyTorch outputs.

Fixture from tools/parity_t2v.py: tiny random official state_dicts (4-bit codes * scale + offset, exact in float32),
latents, T5-like caption features with a partly masked caption, timesteps and the official fp32 CPU outputs.
"""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from framedit_jax.convert.t2v import convert_t2v_state_dict, sample_inputs
from framedit_jax.models.t2v import FrameDiTHT2V, LatteT2V, config_from_diffusers

FIXTURE = os.path.join(os.path.dirname(__file__), 'fixtures', 'models', 't2v_parity.npz')
TINY = dict(num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=8, num_layers=2,
            cross_attention_dim=32, attention_bias=True, sample_size=8, patch_size=2, norm_eps=1e-6,
            caption_channels=24, video_length=4)
MODELS = {'latte_t2v': lambda: LatteT2V(**TINY),
          'framedit_h_t2v': lambda: FrameDiTHT2V(**TINY, num_patches=16, num_col_heads=8, qk_col_dim=8, v_col_dim=16)}


def _unpack_nibbles(packed, shape):
  n = int(np.prod(shape))
  u = np.empty(packed.size * 2, np.int16)
  u[0::2] = packed & 0xF
  u[1::2] = packed >> 4
  return (u[:n] - 8).astype(np.int8).reshape(shape)


@pytest.fixture(scope='module')
def fixture():
  data = np.load(FIXTURE)
  return data, json.loads(bytes(data['__meta__']).decode())


def _state_dict(data, meta, case):
  sd = {}
  for key, shape in meta[case]['coded'].items():
    scale, offset = data[f'{case}|s|{key}']
    sd[key] = _unpack_nibbles(data[f'{case}|q|{key}'], shape).astype(np.float32) * scale + offset
  for key in meta[case]['raw']:
    sd[key] = data[f'{case}|r|{key}']
  return sd


@pytest.mark.parametrize('case', sorted(MODELS))
def test_t2v_models_match_official(fixture, case):
  data, meta = fixture
  module = MODELS[case]()
  params = convert_t2v_state_dict(_state_dict(data, meta, case), module, sample_inputs(module))
  x = jnp.asarray(data[f'{case}|x_codes'].astype(np.float32) / np.float32(32.0))
  y = jnp.asarray(data[f'{case}|y_codes'].astype(np.float32) / np.float32(32.0))
  apply = jax.jit(lambda m: module.apply({'params': params}, x, jnp.asarray(data[f'{case}|t']), y, m))
  out = np.asarray(apply(jnp.asarray(data[f'{case}|mask'])))
  expected = data[f'{case}|out']
  assert np.abs(expected).max() > 1.0
  np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5)
  # The caption mask matters: unmasking the dropped tokens of sample 1 changes its output, not sample 0's.
  out2 = np.asarray(apply(jnp.ones((2, 6), jnp.int32)))
  np.testing.assert_array_equal(out2[0], out[0])
  assert np.abs(out2[1] - out[1]).max() > 1e-3


def test_converter_lists_keys_and_accepts_wrapped_names(fixture):
  data, meta = fixture
  module = MODELS['framedit_h_t2v']()
  sd = _state_dict(data, meta, 'framedit_h_t2v')
  wrapped = {'module.' + k: v for k, v in sd.items()}
  wrapped['module.pos_embed.pos_embed'] = np.zeros((1, 16, 32), np.float32)  # official buffer: ignored
  convert_t2v_state_dict(wrapped, module, sample_inputs(module))
  del sd['temporal_transformer_blocks.1.attn1.matrix_attention.proj_v.bias_row']
  sd['transformer_blocks.0.attn2.extra.weight'] = np.zeros((2, 2), np.float32)
  with pytest.raises(ValueError, match=r'1 missing \[.*proj_v/bias_row\]; 1 unexpected \[.*attn2\.extra\.weight\]'):
    convert_t2v_state_dict(sd, module, sample_inputs(module))


def test_bad_inputs_raise_before_compiling(fixture):
  module = MODELS['latte_t2v']()
  x, t, y = sample_inputs(module)
  init = lambda m, *a: jax.eval_shape(m.init, jax.random.key(0), *a)  # raises before anything compiles
  with pytest.raises(ValueError, match='video_length=4'):
    init(module, jnp.zeros((1, 3, 8, 8, 4)), t, y)
  with pytest.raises(ValueError, match='caption_channels'):
    init(module, x, t, jnp.zeros((1, 4, 7)))
  with pytest.raises(ValueError, match='num_patches=16'):
    init(MODELS['framedit_h_t2v'](), jnp.zeros((1, 4, 4, 4, 4)), t, y)
  with pytest.raises(ValueError, match='norm_type'):
    config_from_diffusers({'norm_type': 'ada_norm_zero'})


def test_latte1_transformer_folder_roundtrip(fixture, tmp_path):
  """A diffusers-layout `transformer/` folder (config.json as Latte-1 ships it + safetensors) loads and matches."""
  from safetensors.numpy import save_file
  from framedit_jax.convert.t2v import load_latte_t2v
  data, meta = fixture
  cfg = dict(TINY, _class_name='LatteT2V', _diffusers_version='0.24.0', activation_fn='gelu-approximate',
             norm_type='ada_norm_single', norm_elementwise_affine=False, num_embeds_ada_norm=1000, dropout=0.0,
             norm_num_groups=32, upcast_attention=False, use_linear_projection=False, only_cross_attention=False,
             double_self_attention=False, attention_type='default', num_vector_embeds=None)
  folder = tmp_path / 'transformer'
  folder.mkdir()
  (folder / 'config.json').write_text(json.dumps(cfg))
  save_file(_state_dict(data, meta, 'latte_t2v'), str(folder / 'diffusion_pytorch_model.safetensors'))
  module, params = load_latte_t2v(str(folder))
  x = jnp.asarray(data['latte_t2v|x_codes'].astype(np.float32) / np.float32(32.0))
  y = jnp.asarray(data['latte_t2v|y_codes'].astype(np.float32) / np.float32(32.0))
  out = jax.jit(module.apply)({'params': params}, x, jnp.asarray(data['latte_t2v|t']), y,
                              jnp.asarray(data['latte_t2v|mask']))
  np.testing.assert_allclose(np.asarray(out), data['latte_t2v|out'], rtol=0, atol=1e-5)
  with pytest.raises(FileNotFoundError, match='transformer'):
    load_latte_t2v(str(tmp_path / 'missing'))


def test_framedit_h_init_from_latte_copies_shared_weights(fixture):
  import flax
  from framedit_jax.convert.t2v import init_framedit_h_from_latte
  data, meta = fixture
  latte = MODELS['latte_t2v']()
  latte_params = convert_t2v_state_dict(_state_dict(data, meta, 'latte_t2v'), latte, sample_inputs(latte))
  fh = MODELS['framedit_h_t2v']()
  shapes = jax.eval_shape(fh.init, jax.random.key(1), *sample_inputs(fh))['params']
  rng = np.random.default_rng(1)
  fresh = jax.tree.map(lambda s: rng.standard_normal(s.shape).astype(np.float32), shapes)  # stand-in fresh init
  merged = flax.traverse_util.flatten_dict(init_framedit_h_from_latte(latte_params, fresh))
  src = flax.traverse_util.flatten_dict(latte_params)
  new = flax.traverse_util.flatten_dict(fresh)
  np.testing.assert_array_equal(merged[('temporal_transformer_blocks_1', 'attn1', 'attention', 'to_q', 'kernel')],
                                src[('temporal_transformer_blocks_1', 'attn1', 'to_q', 'kernel')])
  np.testing.assert_array_equal(merged[('transformer_blocks_0', 'attn2', 'to_k', 'kernel')],
                                src[('transformer_blocks_0', 'attn2', 'to_k', 'kernel')])
  for path in merged:
    if 'matrix_attention' in path or 'output_linear' in path or 'norm_local' in path:
      np.testing.assert_array_equal(merged[path], new[path])
  copied = sum(1 for p in merged if not np.array_equal(merged[p], new[p]))
  assert copied == len(src)  # every Latte leaf found a home


def test_peft_lora_checkpoint_keys_are_merged(fixture):
  """Official LoRA runs save peft names (base_model.model.X.base_layer.weight, X.lora_A/B.default.weight)."""
  data, meta = fixture
  module = MODELS['latte_t2v']()
  sd = {'base_model.model.' + k: v for k, v in _state_dict(data, meta, 'latte_t2v').items()}
  key = 'base_model.model.transformer_blocks.0.attn1.to_q'
  w = sd.pop(key + '.weight')
  rng = np.random.default_rng(0)
  a, b = rng.standard_normal((2, 32)).astype(np.float32), rng.standard_normal((32, 2)).astype(np.float32)
  sd.update({key + '.base_layer.weight': w, key + '.lora_A.default.weight': a, key + '.lora_B.default.weight': b})
  with pytest.raises(ValueError, match='lora_scale'):
    convert_t2v_state_dict(sd, module, sample_inputs(module))
  params = convert_t2v_state_dict(sd, module, sample_inputs(module), lora_scale=0.5)
  np.testing.assert_allclose(params['transformer_blocks_0']['attn1']['to_q']['kernel'], (w + 0.5 * b @ a).T,
                             rtol=1e-6, atol=1e-6)

"""Flax AutoencoderKL vs diffusers' PyTorch AutoencoderKL with copied (random) weights, full SD config.

Reference: diffusers 0.42 `AutoencoderKL` (torch, fp32, CPU). Checked: encoder posterior mean and logvar,
decoder output, within 1e-4 max abs, on 64x64 and on a non-square 96x128 input, for diffusers-named,
legacy-attention-named and original LDM/SD-named (first_stage_model.*) state dicts.
"""

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import torch
import diffusers

from framedit_jax.vae import convert  # pylint: disable=g-import-not-at-top
from framedit_jax.vae import loader
from framedit_jax.vae.autoencoder_kl import AutoencoderKL, SD_VAE_CONFIG

TOL = 1e-4
SHAPES = [(64, 64), (96, 128)]  # square, and non-square (H != W)


@pytest.fixture(scope='module')
def torch_vae():
  torch.manual_seed(0)
  cfg = dict(SD_VAE_CONFIG)
  n = len(cfg['block_out_channels'])
  model = diffusers.AutoencoderKL(down_block_types=('DownEncoderBlock2D',) * n,
                                  up_block_types=('UpDecoderBlock2D',) * n, **cfg).eval()
  with torch.no_grad():  # GroupNorm scale/bias start at 1/0: perturb them so their mapping is tested too
    for name, p in model.named_parameters():
      if 'norm' in name:
        p.add_(0.2 * torch.randn_like(p))
  return model


@pytest.fixture(scope='module')
def state_dict(torch_vae):
  return {k: v.numpy().copy() for k, v in torch_vae.state_dict().items()}


@pytest.fixture(scope='module')
def flax_vae():
  module = AutoencoderKL(**SD_VAE_CONFIG)
  encode = jax.jit(functools.partial(module.apply, method=module.encode))
  decode = jax.jit(functools.partial(module.apply, method=module.decode))
  return module, loader.params_shapes(module), encode, decode


def _torch_reference(torch_vae, h, w, seed):
  g = torch.Generator().manual_seed(seed)
  x = torch.rand(1, 3, h, w, generator=g) * 2 - 1
  z = torch.randn(1, 4, h // 8, w // 8, generator=g)
  with torch.no_grad():
    dist = torch_vae.encode(x).latent_dist
    out = torch_vae.decode(z).sample
  nhwc = lambda t: t.numpy().transpose(0, 2, 3, 1)
  return nhwc(x), nhwc(z), nhwc(dist.mean), nhwc(dist.logvar), nhwc(out)


@pytest.fixture(scope='module')
def torch_refs(torch_vae):
  """Torch outputs per input shape, computed once and shared by the naming variants."""
  cache = {}
  def get(h, w):
    if (h, w) not in cache:
      cache[(h, w)] = _torch_reference(torch_vae, h, w, seed=h * 1000 + w)
    return cache[(h, w)]
  return get


def _check_parity(params, flax_vae, torch_refs, h, w):
  _, _, encode, decode = flax_vae
  x, z, mean, logvar, out = torch_refs(h, w)
  moments = np.asarray(encode({'params': params}, jnp.asarray(x)))
  j_mean, j_logvar = moments[..., :4], np.clip(moments[..., 4:], -30, 20)
  j_out = np.asarray(decode({'params': params}, jnp.asarray(z)))
  errs = dict(mean=np.abs(j_mean - mean).max(), logvar=np.abs(j_logvar - logvar).max(),
              decode=np.abs(j_out - out).max())
  print(f'parity {h}x{w}: ' + ', '.join(f'{k} {v:.2e}' for k, v in errs.items()))
  assert max(errs.values()) < TOL, errs
  assert np.abs(out).max() > 0.1 and np.abs(mean).max() > 0.1  # non-degenerate comparison


def to_ldm(sd, prefix='first_stage_model.'):
  """Independent inverse renaming diffusers -> original LDM names (attention as 1x1 convs)."""
  n = 1 + max(int(m.group(1)) for k in sd if (m := re.match(r'decoder\.up_blocks\.(\d+)', k)))
  out = {}
  for k, v in sd.items():
    parts = k.split('.')
    if parts[1] == 'down_blocks':
      i, kind = parts[2], parts[3]
      new = ['encoder', 'down', i, 'block' if kind == 'resnets' else 'downsample']
      new += [parts[4]] if kind == 'resnets' else []
      new += parts[5:]
    elif parts[1] == 'up_blocks':
      i, kind = str(n - 1 - int(parts[2])), parts[3]
      new = ['decoder', 'up', i, 'block' if kind == 'resnets' else 'upsample']
      new += [parts[4]] if kind == 'resnets' else []
      new += parts[5:]
    elif parts[1] == 'mid_block':
      if parts[2] == 'resnets':
        new = [parts[0], 'mid', f'block_{int(parts[3]) + 1}'] + parts[4:]
      else:
        sub = {'group_norm': 'norm', 'to_q': 'q', 'to_k': 'k', 'to_v': 'v', 'to_out': 'proj_out'}[parts[4]]
        new = [parts[0], 'mid', 'attn_1', sub, parts[-1]]
        if v.ndim == 2:
          v = v[:, :, None, None]
    elif parts[1] == 'conv_norm_out':
      new = [parts[0], 'norm_out'] + parts[2:]
    else:
      new = parts
    out[prefix + '.'.join(new).replace('conv_shortcut', 'nin_shortcut')] = v
  return out


@pytest.mark.parametrize('h,w', SHAPES)
def test_diffusers_parity(torch_refs, state_dict, flax_vae, h, w):
  params = convert.convert_state_dict(state_dict, flax_vae[1])
  _check_parity(params, flax_vae, torch_refs, h, w)


@pytest.mark.parametrize('h,w', SHAPES)
def test_ldm_names_parity(torch_refs, state_dict, flax_vae, h, w):
  ldm = to_ldm(state_dict)
  assert 'first_stage_model.decoder.up.0.block.2.conv1.weight' in ldm
  assert ldm['first_stage_model.encoder.mid.attn_1.q.weight'].ndim == 4
  ldm['model.diffusion_model.input_blocks.0.0.weight'] = np.zeros(3, np.float32)  # rest of an SD ckpt
  assert convert.is_ldm_format(ldm)
  params = convert.convert_state_dict(ldm, flax_vae[1])
  _check_parity(params, flax_vae, torch_refs, h, w)
  # VAE-only LDM file (no prefix) with training-only loss.* keys converts to the same params.
  bare = to_ldm(state_dict, prefix='')
  bare['loss.logvar'] = np.zeros((), np.float32)
  params2 = convert.convert_state_dict(bare, flax_vae[1])
  jax.tree_util.tree_map(np.testing.assert_array_equal, params, params2)


def test_legacy_attention_names_and_inferred_config(state_dict, flax_vae):
  legacy = {}
  for k, v in state_dict.items():
    for new, old in (('to_q', 'query'), ('to_k', 'key'), ('to_v', 'value'), ('to_out.0', 'proj_attn')):
      if f'.attentions.0.{new}.' in k:
        k = k.replace(f'.attentions.0.{new}.', f'.attentions.0.{old}.')
    legacy[k] = v
  assert any('proj_attn' in k for k in legacy)
  ref = convert.convert_state_dict(state_dict, flax_vae[1])
  got = convert.convert_state_dict(legacy, flax_vae[1])
  jax.tree_util.tree_map(np.testing.assert_array_equal, ref, got)
  # Torch layouts: conv (O, I, kh, kw) -> (kh, kw, I, O); linear (O, I) -> (I, O).
  np.testing.assert_array_equal(ref['encoder']['conv_in']['kernel'],
                                state_dict['encoder.conv_in.weight'].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(ref['decoder']['mid_block']['attentions_0']['to_out_0']['kernel'],
                                state_dict['decoder.mid_block.attentions.0.to_out.0.weight'].T)
  inferred = convert.infer_vae_config(to_ldm(state_dict))
  assert {k: inferred[k] for k in SD_VAE_CONFIG if k != 'norm_num_groups'} == {
      k: v for k, v in SD_VAE_CONFIG.items() if k != 'norm_num_groups'}


def test_missing_and_unexpected_keys_are_listed(state_dict, flax_vae):
  bad = dict(state_dict)
  del bad['decoder.conv_out.bias']
  bad['encoder.extra_layer.weight'] = np.zeros((2, 2), np.float32)
  bad['quant_conv.weight'] = bad['quant_conv.weight'][:4]
  with pytest.raises(convert.ConversionError) as err:
    convert.convert_state_dict(bad, flax_vae[1])
  msg = str(err.value)
  assert 'decoder/conv_out/bias' in msg and 'encoder.extra_layer.weight' in msg
  assert 'quant_conv.weight (4, 8, 1, 1)' in msg and '\n' not in msg

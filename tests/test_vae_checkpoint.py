"""Loading VAE weights from files (safetensors / .bin / LDM .ckpt), Orbax round trip, config errors, bf16.

References: the torch state dict itself (exact equality after the documented transposes), and the
fp32 Flax model for the bf16 path.
"""

import ml_collections
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import torch
import diffusers

from framedit_jax.vae import convert, load_vae  # pylint: disable=g-import-not-at-top
from framedit_jax.vae import checkpoint as vae_checkpoint
from test_vae_parity import to_ldm  # pytest puts tests/ on sys.path

SMALL = dict(block_out_channels=(32, 64, 64, 64), layers_per_block=2, latent_channels=4, norm_num_groups=8)


def _vae_config(path, **kw):
  return ml_collections.ConfigDict(dict(name='sd', checkpoint=path, scale_factor=0.18215, chunk_size=4,
                                        dtype='float32', norm_num_groups=8, **kw))


@pytest.fixture(scope='module')
def small_sd():
  torch.manual_seed(1)
  n = 4
  model = diffusers.AutoencoderKL(down_block_types=('DownEncoderBlock2D',) * n,
                                  up_block_types=('UpDecoderBlock2D',) * n, **SMALL).eval()
  with torch.no_grad():
    for name, p in model.named_parameters():
      if 'norm' in name:
        p.add_(0.2 * torch.randn_like(p))
  return model


def _assert_tree_equal(a, b):
  la, lb = jax.tree_util.tree_leaves_with_path(a), jax.tree_util.tree_leaves_with_path(b)
  assert [p for p, _ in la] == [p for p, _ in lb]
  for (_, x), (_, y) in zip(la, lb):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_file_formats_and_orbax_round_trip(small_sd, tmp_path):
  from safetensors.numpy import save_file  # pylint: disable=g-import-not-at-top
  sd = {k: v.numpy().copy() for k, v in small_sd.state_dict().items()}
  folder = tmp_path / 'sd-vae'
  folder.mkdir()
  save_file(sd, str(folder / 'diffusion_pytorch_model.safetensors'))
  torch.save(small_sd.state_dict(), tmp_path / 'diffusion_pytorch_model.bin')
  torch.save({'state_dict': {k: torch.from_numpy(v) for k, v in to_ldm(sd).items()}}, tmp_path / 'sd.ckpt')

  vae = load_vae(_vae_config(str(folder)))  # a diffusers folder
  assert (vae.latent_channels, vae.downsample) == (4, 8)
  np.testing.assert_array_equal(vae.params['decoder']['up_blocks_1']['resnets_2']['conv2']['kernel'],
                                sd['decoder.up_blocks.1.resnets.2.conv2.weight'].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(vae.params['encoder']['mid_block']['attentions_0']['group_norm']['scale'],
                                sd['encoder.mid_block.attentions.0.group_norm.weight'])
  for other in ('diffusion_pytorch_model.bin', 'sd.ckpt'):
    _assert_tree_equal(vae.params, load_vae(_vae_config(str(tmp_path / other))).params)

  # Orbax: converted params + architecture -> directory -> identical params and outputs.
  out_dir = tmp_path / 'converted'
  vae_checkpoint.save_vae_params(str(out_dir), vae.params, dict(SMALL, in_channels=3, out_channels=3))
  restored = load_vae(_vae_config(str(out_dir)))
  _assert_tree_equal(vae.params, restored.params)
  assert restored.module.block_out_channels == SMALL['block_out_channels']
  x = jax.random.uniform(jax.random.key(0), (1, 2, 32, 32, 3), minval=-1, maxval=1)
  np.testing.assert_array_equal(np.asarray(vae.encode_video(x, sample=False)),
                                np.asarray(restored.encode_video(x, sample=False)))


def test_bfloat16_close_to_float32(small_sd, tmp_path):
  from safetensors.numpy import save_file  # pylint: disable=g-import-not-at-top
  save_file({k: v.numpy().copy() for k, v in small_sd.state_dict().items()}, str(tmp_path / 'w.safetensors'))
  f32 = load_vae(_vae_config(str(tmp_path / 'w.safetensors')))
  f32 = type(f32)(f32.module, f32.params, f32.scale_factor, chunk_size=1)
  b16 = type(f32)(f32.module.clone(dtype=jnp.bfloat16), f32.params, f32.scale_factor, chunk_size=1)
  x = jax.random.uniform(jax.random.key(0), (1, 1, 16, 16, 3), minval=-1, maxval=1)
  z32, z16 = f32.encode_video(x, sample=False), b16.encode_video(x, sample=False)
  assert z16.dtype == jnp.float32
  rel = float(jnp.abs(z32 - z16).max() / jnp.abs(z32).max())
  assert 1e-6 < rel < 5e-2, rel  # bf16 really used, and still close


def test_missing_checkpoint_is_one_line_error(tmp_path):
  for path in (None, str(tmp_path / 'nope.safetensors')):
    with pytest.raises(FileNotFoundError) as err:
      load_vae(_vae_config(path))
    msg = str(err.value)
    assert 'config.vae.checkpoint' in msg and 'diffusion_pytorch_model.safetensors' in msg
    assert 'sd-vae-ft-ema' in msg and '\n' not in msg
  ident = load_vae(ml_collections.ConfigDict(dict(name='identity', checkpoint=None, chunk_size=2)))
  x = np.linspace(-1, 1, 2 * 3 * 8 * 8 * 3, dtype=np.float32).reshape(2, 3, 8, 8, 3)
  assert (ident.latent_channels, ident.downsample) == (3, 1)
  np.testing.assert_array_equal(np.asarray(ident.decode_video(ident.encode_video(x))), x)

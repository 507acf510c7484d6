"""Diffusion training on DP-VAE latents (config.vae.name='dpvae'): the model sees T/t_g latent frames."""

import os
import sys

import jax
import numpy as np
import pytest

import _train_utils as tu

sys.path.insert(0, tu.REPO)

KW = dict(block_out_channels=(8, 8), layers_per_block=1, latent_channels=4, norm_num_groups=4)  # spatial /2


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  return tmp_path_factory.mktemp('tfds')  # the sample_videos TFDS dataset, built once for this module


@pytest.fixture(scope='module')
def export_dir(tmp_path_factory):
  from framedit_jax.vae import dpvae as dp
  from framedit_jax.vae.autoencoder_kl import AutoencoderKL
  from framedit_jax.vae.dpvae_video import save_dpvae
  key_module = AutoencoderKL(**KW)
  key_params = dp.jitted_init(key_module, (1, 8, 8, 3))(jax.random.key(0))
  module = dp.DPVAE(**KW, t_g=2)
  params, _ = dp.copy_2d_params(dp.init_params(module, jax.random.key(1), 8), key_params)
  out = str(tmp_path_factory.mktemp('dpvae') / 'export')
  save_dpvae(out, jax.device_get(params), dict(KW, t_g=2), jax.device_get(key_params), KW)
  return out


def test_diffusion_trains_two_steps_on_dpvae_latents(tmp_path, data_dir, export_dir, capsys):
  from framedit_jax.train.loop import train_and_evaluate
  from framedit_jax.vae import load_vae
  config = tu.tiny_config(data_dir, **{
      'vae.name': 'dpvae', 'vae.checkpoint': export_dir, 'data.image_size': 16, 'data.num_frames': 4,
      'train.num_steps': 2, 'train.ckpt_every': 2})
  state = train_and_evaluate(config, str(tmp_path / 'work'))
  out = capsys.readouterr().out
  assert 'latent (2, 8, 8, 4)' in out, out  # 4 frames / t_g=2, 16 px / 2, 4 channels
  assert int(state.step) == 2
  assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(state.params))
  import imageio.v3 as iio
  samples = sorted(os.listdir(tmp_path / 'work' / 'samples'))
  frames = iio.imread(str(tmp_path / 'work' / 'samples' / samples[0]), plugin='pyav')
  assert frames.shape[:3] == (4, 16, 16)  # decoded back to num_frames pixel frames
  # the codec the loop used: z from a clip has T/t_g frames and decodes back to T
  codec = load_vae(config.vae)
  z = codec.encode_video(np.zeros((1, 4, 16, 16, 3), np.float32), sample=False)
  assert z.shape == (1, 2, 8, 8, 4) and codec.decode_video(z).shape == (1, 4, 16, 16, 3)


def test_indivisible_num_frames_is_a_config_error(tmp_path, data_dir, export_dir):
  from framedit_jax.train.loop import train_and_evaluate
  config = tu.tiny_config(data_dir, **{'vae.name': 'dpvae', 'vae.checkpoint': export_dir,
                                               'data.image_size': 16, 'data.num_frames': 5})
  with pytest.raises(ValueError, match='num_frames=5 must be a multiple of the DP-VAE GoP size t_g=2'):
    train_and_evaluate(config, str(tmp_path / 'work'))


def test_diffusion_trains_on_the_dpvae_latent_cache(tmp_path, data_dir, export_dir, capsys):
  """data.use_latents=True with vae.name='dpvae': prepare_latents' clip cache feeds T/t_g latent frames."""
  from framedit_jax.train.loop import train_and_evaluate
  from framedit_jax.vae import load_vae
  from framedit_jax.vae.cache_builder import build_latent_cache
  config = tu.tiny_config(data_dir, **{
      'vae.name': 'dpvae', 'vae.checkpoint': export_dir, 'data.image_size': 16, 'data.num_frames': 4,
      'data.latents_dir': str(tmp_path / 'latents'), 'train.num_steps': 2, 'train.ckpt_every': 2})
  index = build_latent_cache(config, 'train', load_vae(config.vae), max_videos=1)
  assert index['clips']['latent_frames'] == 2 and index['videos'][0]['num_starts'] == 132 - 4 * 2
  config.data.use_latents = True
  state = train_and_evaluate(config, str(tmp_path / 'work'))
  assert 'latent (2, 8, 8, 4)' in capsys.readouterr().out
  assert int(state.step) == 2
  assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(state.params))

"""DP-VAE training on the one trainer (config.task='dpvae'): loss falls, exact resume, mp4s, export loads."""

import os
import sys

import jax
import numpy as np
import pytest

import _train_utils as tu

sys.path.insert(0, tu.REPO)

TINY = {
    'data.image_size': 16, 'data.num_frames': 4, 'data.global_batch_size': 2,
    'dpvae.t_g': 2, 'dpvae.block_out_channels': (8, 8), 'dpvae.norm_num_groups': 4,  # spatial /2
    'dpvae.disc_channels': 4, 'dpvae.disc_layers': 1, 'dpvae.disc_start': 2, 'dpvae.num_recon_videos': 1,
    'dpvae.optim.lr': 1e-3, 'train.num_steps': 4, 'train.ckpt_every': 2, 'train.log_every': 1,
}


def _config(data_dir, **extra):
  from configs import dpvae_demo
  config = dpvae_demo.get_config()
  config.data.data_dir = str(data_dir)
  for k, v in {**TINY, **extra}.items():
    node = config
    *parents, leaf = k.split('.')
    for p in parents:
      node = node[p]
    node[leaf] = v
  return config


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  return tmp_path_factory.mktemp('tfds')


def test_loss_falls_resume_is_bit_identical_and_export_loads(tmp_path, data_dir):
  from framedit_jax.train.loop import train_and_evaluate
  from framedit_jax.vae import load_vae

  ref_state = train_and_evaluate(_config(data_dir), str(tmp_path / 'ref'))
  recon = tu.scalars(tmp_path / 'ref', 'train/recon')
  assert sorted(recon) == [1, 2, 3, 4] and recon[4] < 0.8 * recon[1], recon  # reconstruction loss falls

  work = str(tmp_path / 'resumed')
  train_and_evaluate(_config(data_dir, **{'train.num_steps': 2}), work)
  state = train_and_evaluate(_config(data_dir), work)  # resumes at step 2, runs steps 3-4
  assert int(state.step) == 4
  for a, b in zip(jax.tree.leaves((ref_state.g_params, ref_state.d_params, ref_state.g_opt)),
                  jax.tree.leaves((state.g_params, state.d_params, state.g_opt))):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  # the discriminator trained after disc_start=2
  assert any(float(np.abs(np.asarray(x)).max()) > 0 for x in jax.tree.leaves(state.d_opt))

  mp4 = os.path.join(work, 'recon', 'step_00000004_00.mp4')
  import imageio.v3 as iio
  frames = iio.imread(mp4, plugin='pyav')
  assert frames.shape == (4, 16, 32, 3)  # input | reconstruction side by side

  config = _config(data_dir)
  config.vae.checkpoint = os.path.join(work, 'dpvae_export')
  codec = load_vae(config.vae)
  assert codec.temporal_downsample == 2 and codec.latent_frames(4) == 2
  x = np.asarray(jax.random.uniform(jax.random.key(0), (1, 4, 16, 16, 3), minval=-1, maxval=1))
  z = codec.encode_video(x, sample=False)
  assert z.shape == (1, 2, 8, 8, 4)
  expected = codec._decode(state.g_params, z / codec.scale_factor)  # pylint: disable=protected-access
  np.testing.assert_array_equal(np.asarray(codec.decode_video(z)), np.asarray(expected))


def test_bad_config_errors_before_compiling(tmp_path, data_dir):
  from framedit_jax.train.loop import train_and_evaluate
  with pytest.raises(ValueError, match='num_frames=5 must be a multiple of config.dpvae.t_g=2'):
    train_and_evaluate(_config(data_dir, **{'data.num_frames': 5}), str(tmp_path))
  with pytest.raises(ValueError, match='t_g=4 needs 2 temporal downsamplings'):
    train_and_evaluate(_config(data_dir, **{'dpvae.t_g': 4}), str(tmp_path))
  with pytest.raises(FileNotFoundError, match='key_vae_checkpoint=/nonexistent'):
    train_and_evaluate(_config(data_dir, **{'dpvae.key_vae_checkpoint': '/nonexistent'}), str(tmp_path))


def test_grad_accumulation_equals_one_batch(data_dir):
  """grad_accum_steps=2 on a batch of 4 gives the same generator and discriminator update as one batch of 4
  (disc_start=0, so both adversarial terms are on); the noise is drawn for the whole batch either way."""
  from framedit_jax.train.tasks import make_task
  video = np.asarray(jax.random.uniform(jax.random.key(1), (4, 4, 16, 16, 3), minval=-1, maxval=1))
  out = {}
  for k in (1, 2):
    config = _config(data_dir, **{'data.global_batch_size': 4, 'optim.grad_accum_steps': k,
                                  'dpvae.disc_start': 0})
    task = make_task(config, mesh=None)
    state = task.init_state(jax.random.key(0))
    step = jax.jit(task.step_fn())
    for _ in range(2):
      state, metrics = step(state, {'video': video}, task.frozen())
    out[k] = (state, metrics)
  (s1, m1), (s2, m2) = out[1], out[2]
  assert float(m1['d_loss']) > 0 and float(m1['adv_on']) == 1.0
  for name in ('loss', 'recon', 'reg', 'g_adv', 'd_loss', 'grad_norm'):
    np.testing.assert_allclose(float(m2[name]), float(m1[name]), rtol=1e-5, err_msg=name)
  # Adam moves every weight by about lr per step whatever its gradient's size, so a weight whose gradient is float
  # noise moves by noise: compare whole trees in L2 (the update, relative to how far training moved the weights).
  init = task.init_state(jax.random.key(0))
  for part in ('g_params', 'd_params'):
    a, b, c = (jax.tree.leaves(getattr(s, part)) for s in (s1, s2, init))
    drift = np.sqrt(sum(float(np.sum((np.asarray(x) - np.asarray(z)) ** 2)) for x, z in zip(a, c)))
    err = np.sqrt(sum(float(np.sum((np.asarray(x) - np.asarray(y)) ** 2)) for x, y in zip(a, b)))
    assert drift > 1e-3 and err <= 1e-2 * drift, (part, err, drift)

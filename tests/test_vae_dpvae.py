"""DP-VAE (VideoDiT §3.1): regularisation in closed form, shapes, round trip at init, frozen E_k/D_k."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from framedit_jax.vae import dpvae as dp
from framedit_jax.vae import dpvae_losses as losses
from framedit_jax.vae.autoencoder_kl import AutoencoderKL
from framedit_jax.vae.dpvae_video import DPVideoVAE
from framedit_jax.vae.video import VideoVAE

# 2 levels (spatial /2, one temporal stage) keep compiles short; the SD-like /8, t_g=4 shapes are traced only.
KW = dict(block_out_channels=(8, 8), layers_per_block=1, latent_channels=4, norm_num_groups=4)
T_G, SIZE, F = 2, 8, 2


@pytest.fixture(scope='module')
def vae():
  key_module = AutoencoderKL(**KW)
  key_params = dp.jitted_init(key_module, (1, SIZE, SIZE, 3))(jax.random.key(0))
  module = dp.DPVAE(**KW, t_g=T_G)
  params, _ = dp.copy_2d_params(dp.init_params(module, jax.random.key(1), SIZE), key_params)
  return module, params, key_module, key_params


def _video(t, key=2, b=2):
  return jax.random.uniform(jax.random.key(key), (b, t, SIZE, SIZE, 3), minval=-1.0, maxval=1.0)


def test_reg_loss_closed_form():
  rng = np.random.default_rng(0)
  x_k = rng.uniform(-1, 1, (2, 2, 8, 8, 3)).astype(np.float32)
  mu = rng.normal(size=(2, 2, 2, 2, 4)).astype(np.float32)
  sigma = rng.uniform(0.1, 1, size=mu.shape).astype(np.float32)
  zero = losses.reg_loss(x_k, x_k, mu, sigma, mu, sigma)
  np.testing.assert_array_equal(np.asarray(zero['total']), 0.0)
  d_x, d_mu, d_sigma = 0.3, -0.2, 0.05
  mask = np.zeros(mu.shape, np.float32)
  mask[:, :, 0] = 1.0  # perturb a quarter of the latent
  r = losses.reg_loss(x_k, x_k + d_x, mu + d_mu * mask, sigma + d_sigma * mask, mu, sigma)
  np.testing.assert_allclose(r['key'], [d_x ** 2] * 2, rtol=1e-5)
  np.testing.assert_allclose(r['mu'], [d_mu ** 2 / 2] * 2, rtol=1e-5)  # the mask covers 1 of 2 rows
  np.testing.assert_allclose(r['sigma'], [d_sigma ** 2 / 2] * 2, rtol=1e-4)
  np.testing.assert_allclose(r['total'], r['key'] + r['mu'] + r['sigma'], rtol=1e-6)
  # grows monotonically with the size of the perturbation
  totals = [float(losses.reg_loss(x_k, x_k, mu + s, sigma, mu, sigma)['total'].mean()) for s in (0.1, 0.2, 0.4)]
  np.testing.assert_allclose(totals, [0.01, 0.04, 0.16], rtol=1e-4)


def test_reg_zero_at_init_and_grows_with_residual(vae):
  module, params, key_module, key_params = vae
  x = _video(4)
  fwd = jax.jit(functools.partial(dp.forward, module, key_module=key_module))
  out = fwd(params, key_params=key_params, video=x)
  r = losses.reg_loss(out['x_k'], out['x_k_hat'], out['mu_z'], out['sigma_z'], out['mu_k'], out['sigma_k'])
  # zero-initialised E_r: z has exactly the 2D posterior, the mu and sigma terms vanish ...
  np.testing.assert_array_equal(np.asarray(r['mu']), 0.0)
  np.testing.assert_array_equal(np.asarray(r['sigma']), 0.0)
  # ... and D_k(z) is the 2D VAE's own reconstruction of the key frames (second implementation: VideoVAE)
  ref = VideoVAE(key_module, key_params, scale_factor=1.0)
  x_k_ref = ref.decode_video(ref.encode_video(x[:, ::T_G], sample=False))
  np.testing.assert_allclose(out['x_k_hat'], x_k_ref, atol=1e-5)
  np.testing.assert_allclose(r['key'], np.square(np.asarray(x[:, ::T_G]) - x_k_ref).reshape(2, -1).mean(1),
                             rtol=1e-5)
  # controlled perturbation of E_r's output: bias d on the mean, e on the log-variance
  d, e = 0.25, 0.4
  bias = np.concatenate([np.full(4, d), np.full(4, e)]).astype(np.float32)
  p2 = jax.tree.map(lambda a: a, params)
  p2['quant_conv'] = dict(p2['quant_conv'], bias=jnp.asarray(bias))
  out2 = fwd(p2, key_params=key_params, video=x)
  r2 = losses.reg_loss(out2['x_k'], out2['x_k_hat'], out2['mu_z'], out2['sigma_z'], out2['mu_k'], out2['sigma_k'])
  np.testing.assert_allclose(r2['mu'], [d ** 2] * 2, rtol=1e-5)
  sk = np.asarray(out['sigma_k'])
  want_sigma = np.square(sk * (np.exp(e / 2) - 1.0)).reshape(2, -1).mean(1)
  np.testing.assert_allclose(r2['sigma'], want_sigma, rtol=1e-4)
  assert np.all(np.asarray(r2['total']) > np.asarray(r['total']))


def test_shapes_round_trip_and_indivisible_t(vae):
  module, params, key_module, key_params = vae
  codec = DPVideoVAE(module, params, key_module, key_params)
  x = _video(4, key=3, b=1)
  z = codec.encode_video(x, sample=False)
  assert z.shape == (1, 4 // T_G, SIZE // F, SIZE // F, 4) and codec.latent_frames(4) == 2
  x_hat = codec.decode_video(z)
  assert x_hat.shape == x.shape
  # at init (copied 2D weights, identity temporal layers) the DP-VAE round trip is the 2D VAE's round trip of
  # each GoP's key frame, repeated over the GoP
  ref = VideoVAE(key_module, key_params)
  key_rt = ref.decode_video(ref.encode_video(x[:, ::T_G], sample=False))
  np.testing.assert_allclose(x_hat, jnp.repeat(key_rt, T_G, axis=1), atol=1e-5)
  np.testing.assert_allclose(z, ref.encode_video(x[:, ::T_G], sample=False), atol=1e-6)
  for bad in (3, 5):
    with pytest.raises(ValueError, match=r'not a multiple of the GoP size t_g=2'):
      codec.encode_video(_video(bad, b=1), sample=False)
  with pytest.raises(ValueError, match='multiple of the DP-VAE GoP size'):
    codec.latent_frames(7)
  with pytest.raises(ValueError, match='power of two'):
    dp.num_temporal_stages(3, 4)


def test_sd_like_shapes_divide_space_by_8_and_time_by_t_g():
  kw = dict(block_out_channels=(8, 8, 8, 8), layers_per_block=1, latent_channels=4, norm_num_groups=4)
  module = dp.DPVAE(**kw, t_g=4)
  video = jax.ShapeDtypeStruct((2, 8, 32, 24, 3), jnp.float32)
  params = jax.eval_shape(lambda: dp.init_params(module, jax.random.key(0), 16, 8))
  res = jax.eval_shape(lambda p, x: module.apply({'params': p}, x, method=module.encode_residual), params, video)
  assert res.shape == (2, 2, 4, 3, 8)  # (B, T/4, H/8, W/8, 2 * 4) moments
  z = jax.ShapeDtypeStruct((2, 2, 4, 3, 4), jnp.float32)
  out = jax.eval_shape(lambda p, z: module.apply({'params': p}, z, method=module.decode), params, z)
  assert out.shape == (2, 8, 32, 24, 3)
  with pytest.raises(ValueError, match='t_g=8 needs 3'):
    dp.num_temporal_stages(8, 3)


def test_gradient_does_not_reach_frozen_2d_vae(vae):
  module, params, key_module, key_params = vae
  x = _video(4, key=4, b=1)

  def loss(p, kp):
    out = dp.forward(module, p, key_module, kp, x, jax.random.key(5))
    r = losses.reg_loss(out['x_k'], out['x_k_hat'], out['mu_z'], out['sigma_z'], out['mu_k'], out['sigma_k'])
    return jnp.mean(losses.recon_loss(x, out['x_hat']) + r['total'])

  g_dp, g_key = jax.jit(jax.grad(loss, argnums=(0, 1)))(params, key_params)
  assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree.leaves(g_key))
  assert float(jnp.abs(g_dp['quant_conv']['kernel']).max()) > 0  # E_r learns through z
  assert float(jnp.abs(g_dp['decoder']['conv_out']['kernel']).max()) > 0

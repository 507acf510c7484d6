"""Hybrid loss: against a direct numpy computation, frozen-mean gradients, targets, timestep samplers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from framedit_jax import diffusion as fd

B, T, H, W, C = 3, 2, 2, 2, 4
SHAPE = (B, T, H, W, C)


def _inputs(seed=0):
  k = jax.random.split(jax.random.PRNGKey(seed), 3)
  x0 = jax.random.uniform(k[0], SHAPE, minval=-1, maxval=1)
  noise = jax.random.normal(k[1], SHAPE)
  out = jax.random.normal(k[2], SHAPE[:-1] + (2 * C,))
  out = out.at[..., C:].set(jnp.tanh(out[..., C:]))
  return x0, noise, out


def _np_hybrid(x0, noise, out, t):
  """Direct float64 numpy hybrid loss for the official linear-1000 ε / learned-range setting."""
  x0, noise, out = (np.asarray(a, np.float64) for a in (x0, noise, out))
  beta = np.linspace(1e-4, 0.02, 1000)
  ab = np.cumprod(1 - beta)
  ab_prev = np.append(1.0, ab[:-1])
  post_var = beta * (1 - ab_prev) / (1 - ab)
  post_logvar = np.log(np.append(post_var[1], post_var[1:]))
  losses = []
  for i, ti in enumerate(t):
    xt = np.sqrt(ab[ti]) * x0[i] + np.sqrt(1 - ab[ti]) * noise[i]
    eps, v = out[i, ..., :C], out[i, ..., C:]
    x0_hat = (xt - np.sqrt(1 - ab[ti]) * eps) / np.sqrt(ab[ti])
    c1 = beta[ti] * np.sqrt(ab_prev[ti]) / (1 - ab[ti])
    c2 = (1 - ab_prev[ti]) * np.sqrt(1 - beta[ti]) / (1 - ab[ti])
    mean_p, mean_q = c1 * x0_hat + c2 * xt, c1 * x0[i] + c2 * xt
    logvar_p = (v + 1) / 2 * np.log(beta[ti]) + (1 - v) / 2 * post_logvar[ti]
    if ti == 0:
      cdf = lambda z: 0.5 * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z ** 3)))
      inv_s = np.exp(-0.5 * logvar_p)
      hi = np.where(x0[i] > 0.999, 1.0, cdf(inv_s * (x0[i] - mean_p + 1 / 255)))
      lo = np.where(x0[i] < -0.999, 0.0, cdf(inv_s * (x0[i] - mean_p - 1 / 255)))
      vb = -np.log(np.maximum(hi - lo, 1e-12)).mean() / np.log(2)
    else:
      lq = post_logvar[ti]
      kl = 0.5 * (-1 + logvar_p - lq + np.exp(lq - logvar_p) + (mean_q - mean_p) ** 2 * np.exp(-logvar_p))
      vb = kl.mean() / np.log(2)
    mse = ((noise[i] - eps) ** 2).mean()
    losses.append((mse + vb, mse, vb))
  return np.array(losses).T


def test_training_losses_match_direct_numpy():
  d = fd.create_diffusion('')
  x0, noise, out = _inputs()
  t = jnp.array([0, 1, 640])
  got = d.training_losses(lambda x, tt: out, x0, t, noise)
  want = _np_hybrid(x0, noise, out, np.asarray(t))
  for i, name in enumerate(('loss', 'mse', 'vb')):
    assert got[name].shape == (B,)
    np.testing.assert_allclose(got[name], want[i], rtol=2e-5, atol=1e-6, err_msg=name)


def test_vb_gradient_wrt_eps_channels_is_exactly_zero():
  d = fd.create_diffusion('')
  x0, noise, out = _inputs(1)
  t = jnp.array([0, 10, 900])
  g = jax.grad(lambda o: d.losses_from_output(o, x0, t, noise)['vb'].sum())(out)
  assert np.all(np.asarray(g[..., :C]) == 0.0)
  assert np.abs(np.asarray(g[..., C:])).min() > 0  # the variance channels do learn from vb
  # The mse gradient is the usual 2(ε̂ − ε)/N on the ε̂ channels and 0 on the variance channels.
  g_mse = jax.grad(lambda o: d.losses_from_output(o, x0, t, noise)['mse'].sum())(out)
  np.testing.assert_allclose(g_mse[..., :C], 2 * (out[..., :C] - noise) / (T * H * W * C), rtol=1e-5, atol=1e-8)
  assert np.all(np.asarray(g_mse[..., C:]) == 0.0)


def test_use_kl_does_not_freeze_mean_and_rescales():
  d = fd.create_diffusion('', use_kl=True)
  ref = fd.create_diffusion('')
  x0, noise, out = _inputs(2)
  t = jnp.array([5, 50, 500])
  got = d.losses_from_output(out, x0, t, noise)
  np.testing.assert_allclose(got['loss'], 1000 * ref.losses_from_output(out, x0, t, noise)['vb'], rtol=1e-5)
  g = jax.grad(lambda o: d.losses_from_output(o, x0, t, noise)['loss'].sum())(out)
  assert np.abs(np.asarray(g[..., :C])).max() > 0


@pytest.mark.parametrize('predict', ['x0', 'v'])
def test_other_targets_perfect_prediction(predict):
  d = fd.create_diffusion('', predict=predict, learn_sigma=False)
  x0, noise, _ = _inputs(3)
  t = jnp.array([3, 300, 999])
  ab = d.alphas_cumprod[np.asarray(t)][:, None, None, None, None]
  x0n, nn = np.asarray(x0, np.float64), np.asarray(noise, np.float64)
  target = x0n if predict == 'x0' else np.sqrt(ab) * nn - np.sqrt(1 - ab) * x0n  # v (Salimans & Ho)
  np.testing.assert_allclose(d.training_target(x0, noise, t), target, rtol=1e-5, atol=1e-6)
  out = jnp.asarray(target, jnp.float32)
  losses = d.losses_from_output(out, x0, t, noise)
  np.testing.assert_allclose(losses['mse'], 0.0, atol=1e-10)
  np.testing.assert_array_equal(losses['vb'], 0.0)  # fixed variance, MSE loss: no vb term
  x_t = d.q_sample(x0, t, noise)
  np.testing.assert_allclose(d.p_mean_variance(out, x_t, t)['pred_xstart'], x0, atol=2e-5)


def test_fixed_variances():
  large = fd.create_diffusion('', learn_sigma=False)
  small = fd.create_diffusion('', learn_sigma=False, sigma_small=True)
  x = jnp.zeros((2, 3, 4))
  t = jnp.array([0, 500])
  pl = large.p_mean_variance(x, x, t)
  ps = small.p_mean_variance(x, x, t)
  beta = np.linspace(1e-4, 0.02, 1000)
  ab = np.cumprod(1 - beta)
  pv1 = beta[1] * (1 - ab[0]) / (1 - ab[1])
  np.testing.assert_allclose(pl['variance'][:, 0, 0], [pv1, beta[500]], rtol=1e-5)
  np.testing.assert_allclose(ps['variance'][:, 0, 0], [0.0, beta[500] * (1 - ab[499]) / (1 - ab[500])], rtol=1e-5)


def test_learned_range_endpoints():
  d = fd.create_diffusion('')
  x = jnp.zeros((2, 1, 3))
  t = jnp.array([7, 7])
  out = jnp.concatenate([x, jnp.stack([-jnp.ones((1, 3)), jnp.ones((1, 3))])], axis=-1)
  lv = d.p_mean_variance(out, x, t)['log_variance']
  np.testing.assert_allclose(lv[0], np.log(d.posterior_variance[7]), rtol=1e-6)
  np.testing.assert_allclose(lv[1], np.log(d.betas[7]), rtol=1e-6)


def test_wrong_channel_count_raises():
  d = fd.create_diffusion('')
  with pytest.raises(ValueError, match='learn_sigma'):
    d.p_mean_variance(jnp.zeros((1, 2, 3)), jnp.zeros((1, 2, 3)), jnp.array([1]))

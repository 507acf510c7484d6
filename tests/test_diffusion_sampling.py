"""Samplers: oracle reconstruction, scan == Python loop (tests/_python_loop_samplers.py) step by step,
reproducibility, progress, CFG on labels, full VLB."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from framedit_jax import diffusion as fd
from framedit_jax.diffusion.guidance import guided_model_fn

import _python_loop_samplers as pls

SHAPE = (2, 2, 3, 3, 4)  # (B, T, H, W, C)


def _x0():
  return jax.random.uniform(jax.random.PRNGKey(42), SHAPE, minval=-1, maxval=1)


def _oracle(x0, learn_sigma, diffusion_steps=1000):
  """ε-model that returns the true noise of x_t given x_0, using ORIGINAL-step ᾱ (so respacing is exercised)."""
  ab = jnp.asarray(fd.create_diffusion('', diffusion_steps=diffusion_steps).alphas_cumprod, jnp.float32)

  def model_fn(x_t, t):
    a = ab[t][:, None, None, None, None]
    eps = (x_t - jnp.sqrt(a) * x0) / jnp.sqrt(1 - a)
    return jnp.concatenate([eps, jnp.zeros_like(eps)], -1) if learn_sigma else eps
  return model_fn


def _toy_model(x_t, t, y=None):
  """Small nonlinear stand-in with learned-sigma channels (depends on x, t and optional labels)."""
  s = jnp.sin(0.01 * t.astype(jnp.float32))[:, None, None, None, None]
  eps = 0.5 * jnp.tanh(x_t) + s
  if y is not None:
    eps = eps + 0.1 * y.astype(jnp.float32)[:, None, None, None, None]
  return jnp.concatenate([eps, jnp.tanh(x_t + s)], -1)


@pytest.mark.parametrize('spec,sampler', [('25', 'ddpm'), ('ddim25', 'ddim')])
def test_oracle_model_reconstructs_x0(spec, sampler):
  d = fd.create_diffusion(spec)
  x0 = _x0()
  model = _oracle(x0, learn_sigma=True)
  key = jax.random.PRNGKey(0)
  if sampler == 'ddpm':
    out = jax.jit(lambda k: d.p_sample_loop(model, SHAPE, k))(key)
  else:
    out = jax.jit(lambda k: d.ddim_sample_loop(model, SHAPE, k, eta=0.0))(key)
  np.testing.assert_allclose(out, x0, atol=1e-4)


def test_scan_equals_python_loop_step_by_step_ddpm_with_progress():
  d = fd.create_diffusion('10')
  key = jax.random.PRNGKey(3)
  seen = []
  x_s, traj_s = jax.jit(lambda k: d.p_sample_loop(
      _toy_model, SHAPE, k, return_intermediates=True, progress_every=4,
      progress=lambda done, total: seen.append((done, total))))(key)
  jax.effects_barrier()
  assert sorted(seen) == [(4, 10), (8, 10), (10, 10)]  # host callback per chunk of 4 steps, and at the end
  x_p, traj_p = pls.p_sample_loop_python(d, _toy_model, SHAPE, key, return_intermediates=True)
  assert traj_s.shape == (10,) + SHAPE
  np.testing.assert_allclose(traj_s, traj_p, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(x_s, x_p, rtol=1e-5, atol=1e-5)

  @jax.jit
  def by_hand(key, x_prev_last):
    # First step: x_K ~ normal(key_init); x = μ + σ z with z = normal(fold_in(key_steps, K-1)), model at t=999.
    k_init, k_steps = jax.random.split(key)
    x = jax.random.normal(k_init, SHAPE)
    out = d.p_mean_variance(_toy_model(x, jnp.full((2,), 999, jnp.int32)), x, jnp.full((2,), 9, jnp.int32))
    z = jax.random.normal(jax.random.fold_in(k_steps, 9), SHAPE)
    first = out['mean'] + jnp.exp(0.5 * out['log_variance']) * z
    # Last step (t=0) adds no noise: it is the model mean.
    t0 = jnp.zeros((2,), jnp.int32)
    last = d.p_mean_variance(_toy_model(x_prev_last, t0), x_prev_last, t0)['mean']
    return first, last
  first, last = by_hand(key, traj_s[-2])
  np.testing.assert_allclose(traj_s[0], first, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(x_s, last, rtol=1e-5, atol=1e-5)


def test_scan_equals_python_loop_ddim_eta_and_reproducible():
  d = fd.create_diffusion('ddim10')
  key = jax.random.PRNGKey(5)
  run = jax.jit(lambda k: d.ddim_sample_loop(_toy_model, SHAPE, k, eta=0.5, return_intermediates=True))
  x_s, traj_s = run(key)
  _, traj_p = pls.ddim_sample_loop_python(d, _toy_model, SHAPE, key, eta=0.5, return_intermediates=True)
  np.testing.assert_allclose(traj_s, traj_p, rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(run(key)[0], x_s)  # fixed key -> identical sample
  assert np.abs(np.asarray(run(jax.random.PRNGKey(6))[0] - x_s)).max() > 1e-2


def test_guided_model_fn_labels_equals_hand_computed_eps():
  y = jnp.array([1, 2])
  calls = []

  def model(x, t, y):
    calls.append(x.shape[0])
    return _toy_model(x, t, y)
  x = jax.random.normal(jax.random.PRNGKey(0), SHAPE)
  t = jnp.array([5, 9])
  s = 3.0
  g = guided_model_fn(model, {'y': y}, {'y': 0}, cfg_scale=s, eps_channels=4)(x, t)
  assert calls == [4]  # one batched call of 2B
  cond, unc = _toy_model(x, t, y), _toy_model(x, t, jnp.zeros_like(y))
  np.testing.assert_allclose(g[..., :4], unc[..., :4] + s * (cond[..., :4] - unc[..., :4]), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(g[..., 4:], cond[..., 4:], rtol=1e-6)
  plain = guided_model_fn(model, {'y': y})(x, t)  # no null condition: one conditional call of B
  assert calls[-1] == 2
  np.testing.assert_array_equal(plain, cond)


def test_calc_bpd_loop_scan_vs_loop_and_oracle_kl_zero():
  d = fd.create_diffusion('8', learn_sigma=False, sigma_small=True)
  x0 = _x0()
  key = jax.random.PRNGKey(7)
  oracle = _oracle(x0, learn_sigma=False)
  res = jax.jit(lambda k: d.calc_bpd_loop(oracle, x0, k))(key)
  assert res['vb'].shape == (2, 8)
  # Exact mean and the true posterior variance: every KL term (t > 0; columns 0..6) is 0.
  np.testing.assert_allclose(res['vb'][:, :-1], 0.0, atol=1e-4)
  np.testing.assert_allclose(res['mse'], 0.0, atol=1e-6)
  # Loop reference for a non-oracle model: column j = step K-1-j with noise normal(fold_in(key, t)).
  d2 = fd.create_diffusion('8')
  res2 = jax.jit(lambda k: d2.calc_bpd_loop(_toy_model, x0, k))(key)

  @jax.jit
  def term(t):
    tb = jnp.full((2,), t, jnp.int32)
    x_t = d2.q_sample(x0, tb, jax.random.normal(jax.random.fold_in(key, t), SHAPE))
    return d2.vb_terms_bpd(_toy_model(x_t, d2.model_timesteps(tb)), x0, x_t, tb)['output']
  for j, t in enumerate(range(7, -1, -1)):
    np.testing.assert_allclose(res2['vb'][:, j], term(t), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(res2['total_bpd'], res2['vb'].sum(1) + d2.prior_bpd(x0), rtol=1e-6)

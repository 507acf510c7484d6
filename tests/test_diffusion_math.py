"""Closed-form checks of the diffusion tables, q(x_t|x_0), the posterior, KL, decoder NLL and respacing."""

import math

import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

from framedit_jax import diffusion as fd


def _iddpm_space(num_timesteps, counts):
  """Independent transcription of IDDPM's space_timesteps algorithm (section striding with round())."""
  if counts.startswith('ddim'):
    n = int(counts[4:])
    stride = next(s for s in range(1, num_timesteps) if len(range(0, num_timesteps, s)) == n)
    return list(range(0, num_timesteps, stride))
  counts = [int(c) for c in counts.split(',')]
  bounds = np.cumsum([0] + [num_timesteps // len(counts) + (i < num_timesteps % len(counts))
                            for i in range(len(counts))])
  out = []
  for i, c in enumerate(counts):
    size = bounds[i + 1] - bounds[i]
    stride = 1 if c <= 1 else (size - 1) / (c - 1)
    pos = 0.0
    for _ in range(c):
      out.append(int(bounds[i]) + round(pos))
      pos += stride
  return sorted(set(out))


def test_linear_schedule_endpoints_and_alphas_cumprod():
  d = fd.create_diffusion('')
  np.testing.assert_allclose(d.betas[[0, 1, 999]], [1e-4, 1e-4 + (0.02 - 1e-4) / 999, 0.02], rtol=1e-12)
  # ᾱ_t = Π (1 − β_s) in log space.
  ab = np.exp(np.cumsum(np.log1p(-np.linspace(1e-4, 0.02, 1000))))
  np.testing.assert_allclose(d.alphas_cumprod, ab, rtol=1e-10)
  np.testing.assert_allclose(d.alphas_cumprod[-1], 4.035e-5, rtol=1e-3)  # known value for linear-1000


def test_cosine_schedule_matches_alpha_bar():
  d = fd.create_diffusion('', noise_schedule='cosine', diffusion_steps=100)
  f = lambda s: math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2
  want = np.array([f((i + 1) / 100) / f(0) for i in range(100)])
  # ᾱ telescopes to f(t)/f(0) except where β hit the 0.999 cap (only the last step).
  np.testing.assert_allclose(d.alphas_cumprod[:-1], want[:-1], rtol=1e-10)
  assert d.betas[-1] == pytest.approx(0.999)
  alias = fd.create_diffusion('', noise_schedule='squaredcos_cap_v2', diffusion_steps=100)
  np.testing.assert_array_equal(alias.betas, d.betas)


def test_q_sample_and_q_mean_variance_closed_form():
  d = fd.create_diffusion('')
  x0 = jnp.array([[1.0, -2.0], [0.5, 3.0]])[:, None, :]  # (B=2, 1, C=2)
  eps = jnp.array([[0.3, 0.1], [-1.0, 2.0]])[:, None, :]
  t = jnp.array([0, 999])
  beta = np.linspace(1e-4, 0.02, 1000)
  ab = np.cumprod(1 - beta)[[0, 999]][:, None, None]
  want = np.sqrt(ab) * np.asarray(x0) + np.sqrt(1 - ab) * np.asarray(eps)
  np.testing.assert_allclose(d.q_sample(x0, t, eps), want, rtol=1e-6)
  mean, var, log_var = d.q_mean_variance(x0, t)
  np.testing.assert_allclose(mean, np.sqrt(ab) * np.asarray(x0), rtol=1e-6)
  np.testing.assert_allclose(var, 1 - ab, rtol=1e-6)
  np.testing.assert_allclose(log_var, np.log(1 - ab), rtol=1e-6)
  # t = 0 is one step of noise: x_1 = √(1−β_0) x0 + √β_0 ε.
  np.testing.assert_allclose(d.q_sample(x0, t, eps)[0], math.sqrt(1 - 1e-4) * x0[0] + math.sqrt(1e-4) * eps[0],
                             rtol=1e-6)


@pytest.mark.parametrize('t', [1, 37, 999])
def test_posterior_is_bayes_product_of_gaussians(t):
  d = fd.create_diffusion('')
  beta = np.linspace(1e-4, 0.02, 1000)
  ab = np.cumprod(1 - beta)
  x0, xt = np.array([[0.7, -1.3, 2.0]]), np.array([[0.1, 0.4, -0.8]])
  # q(x_{t-1}|x_t,x_0) ∝ N(x_t; √α_t x_{t-1}, β_t) N(x_{t-1}; √ᾱ_{t-1} x_0, 1 − ᾱ_{t-1}).
  prec = (1 - beta[t]) / beta[t] + 1 / (1 - ab[t - 1])
  var = 1 / prec
  mean = var * (np.sqrt(1 - beta[t]) * xt / beta[t] + np.sqrt(ab[t - 1]) * x0 / (1 - ab[t - 1]))
  m, v, lv = d.q_posterior_mean_variance(jnp.asarray(x0), jnp.asarray(xt), jnp.array([t]))
  np.testing.assert_allclose(m, mean, rtol=2e-5, atol=1e-6)
  np.testing.assert_allclose(v[0, 0], var, rtol=1e-5)
  np.testing.assert_allclose(lv[0, 0], np.log(var), rtol=1e-5)


def test_posterior_log_variance_clipped_at_zero():
  d = fd.create_diffusion('')
  assert d.posterior_variance[0] == 0.0
  np.testing.assert_allclose(d.posterior_log_variance_clipped[0], np.log(d.posterior_variance[1]), rtol=1e-12)


def test_normal_kl_zero_and_closed_form():
  m = jnp.array([0.3, -2.0, 5.0])
  lv = jnp.array([0.0, -3.0, 1.5])
  np.testing.assert_array_equal(fd.normal_kl(m, lv, m, lv), np.zeros(3))
  # KL(N(0,1) ‖ N(1,4)) = log 2 + (1 + 1)/(2·4) − 1/2.
  kl = fd.normal_kl(0.0, 0.0, 1.0, math.log(4.0))
  np.testing.assert_allclose(kl, math.log(2.0) + 2 / 8 - 0.5, rtol=1e-6)


def test_discretized_gaussian_log_likelihood_direct():
  x = np.array([-1.0, -0.5, 0.0, 0.2, 1.0])
  mean = np.array([-0.9, -0.45, 0.1, 0.2, 0.95])
  log_scale = np.array([-2.0, -3.0, -1.0, -4.0, -2.5])
  got = np.asarray(fd.discretized_gaussian_log_likelihood(jnp.asarray(x), means=jnp.asarray(mean),
                                                          log_scales=jnp.asarray(log_scale)))
  # Direct: probability mass of the pixel bin [x − 1/255, x + 1/255] (edges extend to ∓∞), exact Φ via erf.
  phi = lambda z: 0.5 * (1 + special.erf(z / np.sqrt(2)))
  s = np.exp(log_scale)
  hi = np.where(x > 0.999, 1.0, phi((x + 1 / 255 - mean) / s))
  lo = np.where(x < -0.999, 0.0, phi((x - 1 / 255 - mean) / s))
  exact = np.log(hi - lo)
  # The tanh CDF approximation differs from Φ by < 2e-4 absolutely; log-probs agree to ~1e-3 here.
  np.testing.assert_allclose(got, exact, atol=5e-3, rtol=1e-3)
  # And exactly against the same formula with the tanh CDF written out in numpy.
  tanh_cdf = lambda z: 0.5 * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z ** 3)))
  hi = np.where(x > 0.999, 1.0, tanh_cdf((x + 1 / 255 - mean) / s))
  lo = np.where(x < -0.999, 0.0, tanh_cdf((x - 1 / 255 - mean) / s))
  np.testing.assert_allclose(got, np.log(np.maximum(hi - lo, 1e-12)), rtol=2e-5)


@pytest.mark.parametrize('spec', ['250', 'ddim25', '10', '10,20', 'ddim50', '1'])
def test_space_timesteps_matches_iddpm(spec):
  assert fd.space_timesteps(1000, spec) == _iddpm_space(1000, spec)


def test_space_timesteps_known_lists():
  assert fd.space_timesteps(1000, '10') == [0, 111, 222, 333, 444, 555, 666, 777, 888, 999]
  assert fd.space_timesteps(1000, 'ddim25') == list(range(0, 1000, 40))
  s250 = fd.space_timesteps(1000, '250')
  assert len(s250) == 250 and s250[:5] == [0, 4, 8, 12, 16] and s250[-3:] == [991, 995, 999]
  with pytest.raises(ValueError, match='integer stride'):
    fd.space_timesteps(1000, 'ddim300')
  with pytest.raises(ValueError, match='section'):
    fd.space_timesteps(10, '20')


def test_respaced_process_keeps_alphas_cumprod_and_maps_timesteps():
  base = fd.create_diffusion('')
  d = fd.create_diffusion('250')
  assert d.num_timesteps == 250
  np.testing.assert_allclose(d.alphas_cumprod, base.alphas_cumprod[d.timestep_map], rtol=1e-12)
  seen = []
  d.apply_model(lambda x, t: seen.append(t) or x, jnp.zeros((2, 1)), jnp.array([0, 249]))
  np.testing.assert_array_equal(seen[0], [0, 999])

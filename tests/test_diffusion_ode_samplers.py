"""Euler and DPM-Solver++(2M) scan samplers: oracle reconstruction and step-for-step agreement with diffusers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from framedit_jax import diffusion as fd
from framedit_jax.diffusion.ode_samplers import dpmpp_2m_sample_loop, euler_sample_loop, sampler_timesteps

SHAPE = (2, 2, 3, 3, 4)
AB = fd.create_diffusion('').alphas_cumprod


def _x0():
  return jax.random.uniform(jax.random.PRNGKey(42), SHAPE, minval=-1, maxval=1)


def _oracle(x0):
  """True ε of x_t given x_0 at (possibly fractional) step t, ᾱ interpolated in σ like diffusers; learned-sigma."""
  sig = jnp.asarray(np.sqrt((1 - AB) / AB), jnp.float32)

  def model_fn(x_t, t):
    t = t.astype(jnp.float32)
    lo = jnp.floor(t).astype(jnp.int32)
    hi = jnp.minimum(lo + 1, 999)
    s = sig[lo] + (t - lo) * (sig[hi] - sig[lo])
    a = (1 / jnp.sqrt(1 + s * s))[:, None, None, None, None]
    eps = (x_t - a * x0) / jnp.sqrt(1 - a * a)
    return jnp.concatenate([eps, jnp.zeros_like(eps)], -1)
  return model_fn


def _sigma(t):
  sig = jnp.asarray(np.sqrt((1 - AB) / AB), jnp.float32)
  t = jnp.asarray(t, jnp.float32)
  lo = jnp.floor(t).astype(jnp.int32)
  return sig[lo] + (t - lo) * (sig[jnp.minimum(lo + 1, 999)] - sig[lo])


def _toy(x, t):
  """Exact ε̂ = E[ε | x_t] for data x_0 ~ N(0, 0.25 I) plus a small nonlinear error; learned-sigma output."""
  s = _sigma(t)[:, None, None, None, None]
  ab = 1 / (1 + s * s)
  eps = jnp.sqrt(1 - ab) * x / (0.25 * ab + 1 - ab) + 0.05 * jnp.tanh(3 * x)
  return jnp.concatenate([eps, jnp.zeros_like(eps)], -1)


@pytest.mark.parametrize('loop', [euler_sample_loop, dpmpp_2m_sample_loop])
def test_oracle_reconstructs_x0(loop):
  x0 = _x0()
  out = jax.jit(lambda k: loop(AB, _oracle(x0), SHAPE, k, num_steps=10))(jax.random.PRNGKey(0))
  np.testing.assert_allclose(out, x0, atol=2e-4)


@pytest.mark.parametrize('name', ['euler', 'dpmpp_2m'])
def test_matches_diffusers_scheduler_step_by_step(name):
  import torch
  import diffusers
  kw = dict(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule='linear')
  if name == 'euler':
    sched = diffusers.EulerDiscreteScheduler(**kw)
  else:
    sched = diffusers.DPMSolverMultistepScheduler(**kw, algorithm_type='dpmsolver++', solver_order=2)
  steps = 7
  sched.set_timesteps(steps)
  np.testing.assert_allclose(sched.timesteps.numpy(), sampler_timesteps(steps, 1000, 'linspace',
                                                                        'euler' if name == 'euler' else 'dpm'),
                             atol=1e-3)
  noise = np.array(jax.random.normal(jax.random.PRNGKey(1), SHAPE))
  x = torch.from_numpy(noise) * sched.init_noise_sigma
  for t in sched.timesteps:
    inp = sched.scale_model_input(x, t)
    eps = np.array(_toy(jnp.asarray(inp.numpy()), jnp.full((2,), float(t))))[..., :4]
    x = sched.step(torch.from_numpy(eps), t, x).prev_sample
  loop = euler_sample_loop if name == 'euler' else dpmpp_2m_sample_loop
  ours = jax.jit(lambda n: loop(AB, _toy, SHAPE, None, num_steps=steps, noise=n))(jnp.asarray(noise))
  np.testing.assert_allclose(ours, x.numpy(), rtol=0, atol=2e-4)
  assert 0.2 < np.std(x.numpy()) < 2.0  # a sane sample (data std 0.5)


def test_bad_arguments():
  with pytest.raises(ValueError, match='num_steps'):
    sampler_timesteps(0)
  with pytest.raises(ValueError, match='leading'):
    sampler_timesteps(10, spacing='leading', solver='dpm')
  with pytest.raises(ValueError, match='channels'):
    euler_sample_loop(AB, lambda x, t: jnp.zeros(x.shape[:-1] + (3,)), SHAPE, jax.random.PRNGKey(0), num_steps=2)

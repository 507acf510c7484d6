"""Rectified flow (SD3): closed forms for the optimal velocity field, its loss, the t law, CFG and training."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from framedit_jax.diffusion.guidance import guided_model_fn
from framedit_jax.diffusion.objectives import create_objective, sample_train_timesteps
from framedit_jax.diffusion.rectified_flow import RectifiedFlow, shift_time


def point_mass_velocity(a, time_scale=1000.0):
  """Optimal field for data = the point a: E[eps - x0 | x_t] = (x_t - a) / t."""
  def model_fn(x, t_model, y=None):
    del y
    t = (t_model / time_scale).reshape((-1,) + (1,) * (x.ndim - 1))
    return (x - a) / t
  return model_fn


@pytest.mark.parametrize('num_steps,shift', [(1, 1.0), (7, 3.0)])
def test_optimal_field_of_a_point_mass_brings_noise_to_the_point(num_steps, shift):
  rf = RectifiedFlow(shift=shift, num_sample_steps=num_steps)
  a = jax.random.normal(jax.random.PRNGKey(1), (1, 3, 4, 4, 2))
  x = jax.jit(lambda k: rf.p_sample_loop(point_mass_velocity(a), (5, 3, 4, 4, 2), k))(jax.random.PRNGKey(2))
  np.testing.assert_allclose(np.asarray(x), np.broadcast_to(np.asarray(a), x.shape), atol=2e-5)


def test_cfg_extrapolates_between_point_masses():
  """cond field -> a, uncond field -> b; guided field (s) is the optimal field of b + s (a - b)."""
  rf = RectifiedFlow(num_sample_steps=4)
  a, b, s = 1.5, -0.5, 3.0

  def model_fn(x, t_model, y):
    target = jnp.where(y == 0, a, b).reshape((-1,) + (1,) * (x.ndim - 1))
    return point_mass_velocity(target)(x, t_model)

  guided = guided_model_fn(model_fn, {'y': jnp.zeros((2,), jnp.int32)}, {'y': 1}, cfg_scale=s)
  x = rf.euler_sample_loop(guided, (2, 2, 4, 4, 3), jax.random.PRNGKey(0))
  np.testing.assert_allclose(np.asarray(x), b + s * (a - b), atol=2e-5)


@pytest.mark.parametrize('t', [0.2, 0.5, 0.9])
def test_loss_at_the_optimum_equals_its_closed_form(t):
  """x0 ~ N(0, sigma^2): v* = (t - (1-t) sigma^2) / ((1-t)^2 sigma^2 + t^2) x_t, min loss = sigma^2 / (same)."""
  sigma = 0.7
  rf = RectifiedFlow()
  denom = (1 - t)**2 * sigma**2 + t**2
  opt = lambda x, tm: (t - (1 - t) * sigma**2) / denom * x
  k1, k2 = jax.random.split(jax.random.PRNGKey(3))
  x0 = sigma * jax.random.normal(k1, (8, 2, 64, 64, 4))
  noise = jax.random.normal(k2, x0.shape)
  tt = jnp.full((8,), t)
  loss = float(jnp.mean(rf.training_losses(opt, x0, tt, noise)['loss']))
  np.testing.assert_allclose(loss, sigma**2 / denom, rtol=0.01)  # 262k samples: MC error ~0.3%
  worse = float(jnp.mean(rf.training_losses(lambda x, tm: opt(x, tm) + 0.1, x0, tt, noise)['loss']))
  np.testing.assert_allclose(worse - loss, 0.01, rtol=0.2)  # any other field pays E[(f - v*)^2] more


def test_training_times_are_shifted_logit_normal():
  rf = RectifiedFlow(shift=3.0, logit_mean=0.2, logit_std=0.8)
  t = np.asarray(sample_train_timesteps(rf, jax.random.PRNGKey(0), 20000))
  assert t.dtype == np.float32 and 0 < t.min() and t.max() < 1

  def cdf(s):  # P(shift(sigmoid(u)) <= s), u ~ N(0.2, 0.8)
    r = s / (3.0 - 2.0 * s)  # inverse shift
    return stats.norm.cdf((np.log(r / (1 - r)) - 0.2) / 0.8)
  assert stats.kstest(t, cdf).pvalue > 1e-3
  np.testing.assert_allclose(np.asarray(shift_time(jnp.array([0.0, 0.5, 1.0]), 3.0)), [0.0, 0.75, 1.0], atol=1e-7)
  times = np.asarray(rf.sample_times(4))
  assert times[0] == 1.0 and times[-1] == 0.0 and np.all(np.diff(times) < 0)


def test_objective_factory_and_errors():
  import ml_collections
  d = ml_collections.ConfigDict(dict(objective='rectified_flow', learn_sigma=False, rf_shift=2.0))
  rf = create_objective(d, 12)
  assert isinstance(rf, RectifiedFlow) and rf.shift == 2.0 and rf.num_sample_steps == 12
  with pytest.raises(ValueError, match='learn_sigma=False'):
    create_objective(ml_collections.ConfigDict(dict(objective='rectified_flow', learn_sigma=True)))
  with pytest.raises(ValueError, match='objective must be one of'):
    create_objective(ml_collections.ConfigDict(dict(objective='flow')))
  with pytest.raises(ValueError, match='num_sample_steps'):
    RectifiedFlow(num_sample_steps=0)

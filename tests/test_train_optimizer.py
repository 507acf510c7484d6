"""Optimizer clip schedule and EMA against closed forms."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from framedit_jax.train.optimizer import learning_rate_schedule, make_optimizer, scheduled_clip_by_global_norm
from framedit_jax.train.state import create_train_state, ema_update


def test_clip_is_identity_before_start_and_clips_after():
  tx = scheduled_clip_by_global_norm(max_norm=0.1, start_step=2)
  g = {'a': jnp.array([3.0, 4.0])}  # norm 5
  s = tx.init(g)
  out = []
  for _ in range(4):
    u, s = tx.update(g, s)
    out.append(np.asarray(u['a']))
  np.testing.assert_allclose(out[0], [3.0, 4.0])
  np.testing.assert_allclose(out[1], [3.0, 4.0])
  # torch clip_grad_norm_: g * max_norm / (norm + 1e-6)
  np.testing.assert_allclose(out[2], np.array([3.0, 4.0]) * 0.1 / (5.0 + 1e-6), rtol=1e-6)
  np.testing.assert_allclose(np.linalg.norm(out[3]), 0.1, rtol=1e-5)


def test_clip_never_scales_up_small_grads():
  tx = scheduled_clip_by_global_norm(max_norm=10.0, start_step=0)
  g = {'a': jnp.array([0.3, 0.4])}
  u, _ = tx.update(g, tx.init(g))
  np.testing.assert_allclose(u['a'], [0.3, 0.4])


def test_adamw_first_step_matches_closed_form():
  cfg = ml_collections.ConfigDict(dict(lr=1e-3, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0, warmup_steps=0,
                                       clip_max_norm=0.1, start_clip_iter=100))
  tx = make_optimizer(cfg)
  p = {'w': jnp.array([1.0, -2.0])}
  g = {'w': jnp.array([0.5, -0.25])}
  u, _ = tx.update(g, tx.init(p), p)
  # Adam's first bias-corrected step is -lr * g / (|g| + eps) = -lr * sign(g) (no clip before step 100).
  np.testing.assert_allclose(u['w'], -1e-3 * np.sign([0.5, -0.25]), rtol=1e-5)


def test_cosine_decay_closed_form():
  """optim.decay_steps: linear warm-up to lr, then lr (1 + cos(pi k / K)) / 2 over the K = decay - warmup steps
  after it, then 0; decay_steps = 0 keeps the constant (official) schedule."""
  cfg = ml_collections.ConfigDict(dict(lr=2e-3, warmup_steps=10, decay_steps=110))
  lr = learning_rate_schedule(cfg)
  for step in (0, 5, 10, 35, 60, 85, 110, 150):
    k = min(max(step - 10, 0), 100)
    want = 2e-3 * step / 10 if step < 10 else 2e-3 * 0.5 * (1 + np.cos(np.pi * k / 100))
    np.testing.assert_allclose(float(lr(step)), want, rtol=1e-5, atol=1e-12)
  cfg.decay_steps = 0
  np.testing.assert_allclose([float(learning_rate_schedule(cfg)(s)) for s in (10, 60, 500)], 2e-3, rtol=1e-6)


def test_decay_steps_not_after_warmup_is_one_line_error():
  import pytest  # pylint: disable=g-import-not-at-top
  from framedit_jax.train import validate  # pylint: disable=g-import-not-at-top
  import _train_utils as tu  # pylint: disable=g-import-not-at-top
  config = tu.tiny_config('/unused')
  with config.unlocked():
    config.optim.warmup_steps, config.optim.decay_steps = 20, 20
  with pytest.raises(ValueError, match=r'config.optim.decay_steps=20 must exceed config.optim.warmup_steps=20'):
    validate.validate_config(config)


def test_ema_closed_form():
  params = {'w': jnp.zeros(3)}
  ema = params
  target = {'w': jnp.ones(3)}
  for _ in range(5):
    ema = ema_update(ema, target, decay=0.9)
  np.testing.assert_allclose(ema['w'], 1 - 0.9**5, rtol=1e-6)


def test_train_state_ema_starts_as_copy():
  p = {'w': jnp.arange(3.0)}
  s = create_train_state(p, optax.sgd(0.1), jax.random.PRNGKey(0))
  np.testing.assert_array_equal(s.ema_params['w'], p['w'])
  assert int(s.step) == 0

"""Optimizer clip schedule and EMA against closed forms."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from framedit_jax.train.optimizer import make_optimizer, scheduled_clip_by_global_norm
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

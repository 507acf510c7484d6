"""One real train step of the unmodified demo config, checked against closed forms.

At initialisation the model outputs exactly 0 (adaLN-Zero), so the first step's ε-MSE must equal
mean(noise²) for the noise the step draws from ``fold_in(rng, 0)``; the learned-range variance sits at the
geometric mean of β_t and β̃_t. Also checks the gradient-accumulation identity on the real model.
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import _train_utils as tu

sys.path.insert(0, tu.REPO)


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
  from configs import demo
  from framedit_jax.data.pipeline import make_dataset
  from framedit_jax.parallel import mesh as mesh_lib
  from framedit_jax.train.experiment import build_model, init_state, training_diffusion
  from framedit_jax.train.optimizer import make_optimizer

  config = demo.get_config()
  config.data.data_dir = str(tmp_path_factory.mktemp('tfds'))
  config.optim.warmup_steps = 0  # the closed form below is AdamW's first step at the full lr
  batch = next(make_dataset(config, 'train'))
  d = config.data
  model = build_model(config, 3, d.image_size)
  diffusion = training_diffusion(config)
  optimizer = make_optimizer(config.optim)
  mesh = mesh_lib.make_mesh(config.mesh)
  shape = (d.num_frames, d.image_size, d.image_size, 3)
  with jax.set_mesh(mesh):
    state, _ = init_state(config, model, optimizer, mesh, shape)
  return config, batch, model, diffusion, optimizer, state


def test_demo_first_step_matches_closed_form(setup):
  from framedit_jax.train.step import train_step
  config, batch, model, diffusion, optimizer, state = setup
  b = {'video': jnp.asarray(batch['video']), 'label': jnp.asarray(batch['label'])}
  assert b['video'].shape == (config.data.global_batch_size, config.data.num_frames, 32, 32, 3)
  assert float(b['video'].min()) >= -1.0 and float(b['video'].max()) <= 1.0

  key = jax.random.fold_in(state.rng, 0)
  k_t, k_noise, _ = jax.random.split(key, 3)
  noise = jax.random.normal(k_noise, b['video'].shape, jnp.float32)
  # The zero-initialised final layer predicts 0, so the first loss is the mean square of the target:
  # eps for IDDPM, the velocity eps - x_0 for rectified flow (the demo's objective).
  target = noise - b['video'] if config.diffusion.objective == 'rectified_flow' else noise
  expected_mse = float(jnp.mean(target**2))

  new_state, metrics = jax.jit(lambda s, x: train_step(s, x, model=model, diffusion=diffusion,
                                                        optimizer=optimizer, config=config))(state, b)
  np.testing.assert_allclose(float(metrics['mse']), expected_mse, rtol=1e-5)
  assert float(metrics['finite']) == 1.0
  assert int(new_state.step) == 1
  # AdamW's first step moves every parameter with a non-zero gradient by exactly lr (sign step, no clip at 1.0
  # since the grad norm is small) — check the update norm equals lr * sqrt(#params with non-zero grad).
  assert 0 < float(metrics['update_norm'])
  moved = jax.tree.map(lambda a, c: np.abs(np.asarray(a) - np.asarray(c)), new_state.params, state.params)
  max_move = max(float(m.max()) for m in jax.tree.leaves(moved))
  np.testing.assert_allclose(max_move, config.optim.lr, rtol=1e-3)
  # EMA moved by (1 - decay) of the parameter change.
  for e, p0, p1 in zip(jax.tree.leaves(new_state.ema_params), jax.tree.leaves(state.params),
                       jax.tree.leaves(new_state.params)):
    np.testing.assert_allclose(np.asarray(e), config.optim.ema_decay * np.asarray(p0)
                               + (1 - config.optim.ema_decay) * np.asarray(p1), rtol=1e-6, atol=1e-8)


def test_gradient_accumulation_equals_one_big_batch(setup):
  from framedit_jax.train.step import loss_and_grads
  config, batch, model, diffusion, _, state = setup
  x0 = jnp.asarray(batch['video'])
  b = x0.shape[0]
  key = jax.random.PRNGKey(3)
  from framedit_jax.diffusion.objectives import sample_train_timesteps
  t = sample_train_timesteps(diffusion, key, b)
  noise = jax.random.normal(jax.random.fold_in(key, 1), x0.shape)
  # Non-zero-init parameters so that gradients flow everywhere.
  params = jax.tree.map(lambda p: p + 0.02 * jax.random.normal(jax.random.fold_in(key, p.size), p.shape), state.params)
  g1, m1 = jax.jit(lambda p: loss_and_grads(p, model, diffusion, x0, t, noise, None, grad_accum_steps=1))(params)
  g4, m4 = jax.jit(lambda p: loss_and_grads(p, model, diffusion, x0, t, noise, None, grad_accum_steps=4))(params)
  np.testing.assert_allclose(float(m4['loss']), float(m1['loss']), rtol=1e-5)
  for a, c in zip(jax.tree.leaves(g1), jax.tree.leaves(g4)):
    np.testing.assert_allclose(np.asarray(c), np.asarray(a), rtol=1e-4, atol=1e-6)


def test_mfu_flop_count_matches_xla(setup):
  """The loop's analytic train-step FLOPs (for MFU) agree with XLA's count of the real compiled step."""
  from framedit_jax.train.tasks.video import train_flops
  from framedit_jax.train.step import train_step
  config, batch, model, diffusion, optimizer, state = setup
  b = {'video': jnp.asarray(batch['video']), 'label': jnp.asarray(batch['label'])}
  # XLA's cost analysis counts a while-loop body once, not once per trip: count the unrolled model (same FLOPs).
  model = model.clone(scan_blocks=False)
  step = jax.jit(lambda s, x: train_step(s, x, model=model, diffusion=diffusion, optimizer=optimizer, config=config))
  cost = step.lower(state, b).cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  d = config.data
  analytic = train_flops(config, (d.num_frames, d.image_size, d.image_size, 3))
  assert 0.85 < cost['flops'] / analytic < 1.15

"""Two real train steps with the image-DiT options: config.model.init_from and diffusion.objective='rectified_flow'.

One compiled train step serves both states (the options change the initial params, not the step).
"""

import importlib.util
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
ARCH = dict(hidden_size=32, depth=2, num_heads=2)


def _random_dit(path):
  from safetensors.numpy import save_file
  spec = importlib.util.spec_from_file_location('make_random_dit', os.path.join(REPO, 'tools', 'make_random_dit.py'))
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  save_file(mod.make_random_dit('DiT-S/2', seed=1, input_size=8, in_channels=3, learn_sigma=False, **ARCH), path)


def test_init_from_dit_and_rectified_flow_train_two_steps(tmp_path):
  from configs import demo
  from framedit_jax.convert.checkpoint_io import load_params
  from framedit_jax.convert.init_from_image_dit import write_init_checkpoint
  from framedit_jax.diffusion.rectified_flow import RectifiedFlow
  from framedit_jax.parallel import mesh as mesh_lib
  from framedit_jax.train.loop import build_model, init_state, training_diffusion
  from framedit_jax.train.optimizer import make_optimizer
  from framedit_jax.train.step import make_train_step

  _random_dit(str(tmp_path / 'dit.safetensors'))
  out, _ = write_init_checkpoint(str(tmp_path / 'dit.safetensors'), 'Latte-S/2', str(tmp_path / 'init'),
                                 overrides=dict(num_frames=2, **ARCH))
  config = demo.get_config()
  config.model.name = 'Latte-S/2'
  config.model.overrides = dict(ARCH)
  config.model.learn_sigma = config.diffusion.learn_sigma = False
  config.diffusion.objective = 'rectified_flow'
  config.data.image_size, config.data.num_frames, config.data.global_batch_size = 8, 2, 2
  model = build_model(config, 3, 8)
  rf = training_diffusion(config)
  assert isinstance(rf, RectifiedFlow)
  optimizer = make_optimizer(config.optim)
  mesh = mesh_lib.make_mesh(config.mesh)
  with jax.set_mesh(mesh):
    fresh, _ = init_state(config, model, optimizer, mesh, (2, 8, 8, 3))
    config.model.init_from = out
    loaded, _ = init_state(config, model, optimizer, mesh, (2, 8, 8, 3))
  want, _ = load_params(out)
  for tree in (loaded.params, loaded.ema_params):
    for a, b in zip(jax.tree.leaves(tree), jax.tree.leaves(want)):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

  x0 = jax.random.uniform(jax.random.PRNGKey(0), (2, 2, 8, 8, 3), minval=-1, maxval=1)
  batch = {'video': x0, 'label': jnp.zeros((2,), jnp.int32)}
  _, k_noise, _ = jax.random.split(jax.random.fold_in(fresh.rng, 0), 3)
  zero_init_loss = float(jnp.mean((jax.random.normal(k_noise, x0.shape) - x0)**2))
  step = make_train_step(model, rf, optimizer, config)
  for name, state in (('fresh', fresh), ('init_from', loaded)):
    losses = []
    for _ in range(2):
      state, metrics = step(state, batch)
      assert float(metrics['finite']) == 1.0
      losses.append(float(metrics['loss']))
    assert int(state.step) == 2 and losses[0] != losses[1]
    if name == 'fresh':  # the adaLN-Zero model outputs v = 0: loss = mean((eps - x0)^2) of the step's own draws
      np.testing.assert_allclose(losses[0], zero_init_loss, rtol=1e-5)
    else:  # the DiT-initialised model is not the zero function
      assert abs(losses[0] - zero_init_loss) > 1e-3

  config.model.overrides = dict(ARCH, hidden_size=64)
  with pytest.raises(ValueError, match='do not fit config.model'), jax.set_mesh(mesh):
    init_state(config, build_model(config, 3, 8), optimizer, mesh, (2, 8, 8, 3))

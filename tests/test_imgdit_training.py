"""Real train steps with the image-DiT options together, on a tiny VideoDiT-S/2 (one compile per batch shape):
config.model.init_from (image-DiT init), diffusion.objective='rectified_flow' and data.video_prob (joint
image-video training: a video step and an image step)."""

import importlib.util
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
ARCH = dict(hidden_size=16, depth=1, num_heads=2)


def _random_dit(path):
  from safetensors.numpy import save_file
  spec = importlib.util.spec_from_file_location('make_random_dit', os.path.join(REPO, 'tools', 'make_random_dit.py'))
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  save_file(mod.make_random_dit('DiT-S/2', seed=1, input_size=8, in_channels=3, learn_sigma=False, **ARCH), path)


def test_init_from_dit_rectified_flow_and_joint_steps(tmp_path):
  from configs import demo
  from framedit_jax.convert.checkpoint_io import load_params
  from framedit_jax.convert.init_from_image_dit import write_init_checkpoint
  from framedit_jax.data.joint import is_video_step, joint_batch
  from framedit_jax.diffusion.rectified_flow import RectifiedFlow
  from framedit_jax.parallel import mesh as mesh_lib
  from framedit_jax.train.experiment import build_model, init_state, training_diffusion
  from framedit_jax.train.optimizer import make_optimizer
  from framedit_jax.train.step import make_train_step
  from framedit_jax.train.validate import validate_config

  _random_dit(str(tmp_path / 'dit.safetensors'))
  out, report = write_init_checkpoint(str(tmp_path / 'dit.safetensors'), 'VideoDiT-S/2', str(tmp_path / 'init'),
                                      overrides=dict(num_frames=2, **ARCH))
  assert report['dit'] == 'DiT-S/2' and 'blocks_0' in report['copied'] and 'proj_3d' in report['fresh']
  config = demo.get_config()
  config.model.name = 'VideoDiT-S/2'
  config.model.overrides = dict(ARCH)
  config.model.learn_sigma = config.diffusion.learn_sigma = False
  config.diffusion.objective = 'rectified_flow'
  config.data.video_prob = 0.5
  config.data.image_size, config.data.num_frames, config.data.global_batch_size = 8, 2, 2
  validate_config(config)
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

  host = {'video': np.asarray(jax.random.uniform(jax.random.PRNGKey(0), (2, 2, 8, 8, 3), minval=-1, maxval=1)),
          'label': np.zeros((2,), np.int32)}
  step = make_train_step(model, rf, optimizer, config)
  # fresh adaLN-Zero model outputs v = 0: the first loss is mean((eps - x0)^2) for the step's own draws
  _, k_noise, _ = jax.random.split(jax.random.fold_in(fresh.rng, 0), 3)
  zero_init_loss = float(jnp.mean((jax.random.normal(k_noise, host['video'].shape) - host['video'])**2))
  _, metrics = step(fresh, jax.tree.map(jnp.asarray, host))
  np.testing.assert_allclose(float(metrics['loss']), zero_init_loss, rtol=1e-5)
  # the DiT-initialised model: a video step then an image step (B*T one-frame clips)
  video_step = next(s for s in range(50) if is_video_step(config.seed, s, 0.5))
  image_step = next(s for s in range(50) if not is_video_step(config.seed, s, 0.5))
  state, shapes, losses = loaded, [], []
  for s in (video_step, image_step):
    batch = joint_batch(host, config, s)
    shapes.append(batch['video'].shape)
    state, metrics = step(state, jax.tree.map(jnp.asarray, batch))
    assert float(metrics['finite']) == 1.0
    losses.append(float(metrics['loss']))
  assert shapes == [(2, 2, 8, 8, 3), (4, 1, 8, 8, 3)] and int(state.step) == 2
  assert abs(losses[0] - zero_init_loss) > 1e-3  # not the zero function: the DiT weights are in use

  config.model.overrides = dict(ARCH, hidden_size=32)
  with pytest.raises(ValueError, match='do not fit config.model'), jax.set_mesh(mesh):
    init_state(config, build_model(config, 3, 8), optimizer, mesh, (2, 8, 8, 3))

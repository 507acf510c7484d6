"""Image-joint training with per-image labels (official `y_image`, FrameDiT train.py / models/framedit_h_img.py).

References: the model called with explicit `y`, `y_image` (second path); label dropout draws are per element.
"""

import os
import sys

import jax
import pytest
import jax.numpy as jnp
import numpy as np

import _train_utils as tu

sys.path.insert(0, tu.REPO)

NF, IMG, NC = 4, 2, 5


@pytest.fixture(scope='module')
def setup():
  from framedit_jax.train.experiment import build_model, init_state, training_diffusion
  from framedit_jax.train.optimizer import make_optimizer
  from framedit_jax.parallel import mesh as mesh_lib
  config = tu.tiny_config('/unused', **{'model.num_classes': NC, 'model.class_dropout_prob': 0.0,
                                        'data.use_image_num': IMG, 'data.image_size': 8,
                                        'model.overrides.hidden_size': 32})
  config.model.name = 'LatteIMG-S/2'
  model = build_model(config, 3, 8)
  optimizer = make_optimizer(config.optim)
  mesh = mesh_lib.make_mesh(config.mesh, devices=jax.devices()[:1])
  with jax.set_mesh(mesh):
    state, _ = init_state(config, model, optimizer, mesh, (NF + IMG, 8, 8, 3))
  # adaLN layers start at zero: perturb so that the labels change the output.
  params = jax.tree.map(lambda p: p + 0.05 * jnp.sin(jnp.arange(p.size, dtype=jnp.float32).reshape(p.shape)),
                        state.params)
  return config, model, training_diffusion(config), optimizer, state.replace(params=params), mesh


def test_packed_labels_equal_explicit_y_image(setup):
  _, model, _, _, state, _ = setup
  apply = jax.jit(lambda p, x, t, y, y_image: model.apply({'params': p}, x, t, y=y, y_image=y_image))
  x = jax.random.normal(jax.random.PRNGKey(0), (2, NF + IMG, 8, 8, 3))
  t = jnp.array([10, 500])
  y, y_image = jnp.array([1, 2]), jnp.array([[3, 4], [0, 2]])
  packed = apply(state.params, x, t, jnp.concatenate([y[:, None], y_image], 1), None)
  explicit = apply(state.params, x, t, y, y_image)
  np.testing.assert_array_equal(np.asarray(packed), np.asarray(explicit))
  clip_only = apply(state.params, x, t, y, None)  # images conditioned on the clip's label
  assert np.abs(np.asarray(packed) - np.asarray(clip_only)).max() > 1e-4


def test_train_step_uses_label_image(setup):
  from framedit_jax.train.step import train_step
  config, model, diffusion, optimizer, state, mesh = setup
  rng = np.random.default_rng(0)
  batch = {'video': jnp.asarray(rng.standard_normal((4, NF + IMG, 8, 8, 3)), jnp.float32),
           'label': jnp.asarray([0, 1, 2, 3], jnp.int32), 'label_image': jnp.asarray([[0, 1]] * 4, jnp.int32)}
  other = dict(batch, label_image=jnp.asarray([[4, 3]] * 4, jnp.int32))
  with jax.set_mesh(mesh):
    step = jax.jit(lambda s, b: train_step(s, b, model=model, diffusion=diffusion, optimizer=optimizer,
                                           config=config)[1]['loss'])
    a, b = float(step(state, batch)), float(step(state, other))
  assert np.isfinite(a) and abs(a - b) > 1e-7


def test_label_dropout_is_independent_per_image():
  from framedit_jax.train.step import drop_labels
  y = jnp.zeros((4000, 1 + IMG), jnp.int32)
  dropped = np.asarray(drop_labels(jax.random.PRNGKey(0), y, NC, 0.5)) == NC
  assert abs(dropped.mean() - 0.5) < 0.03
  # independence: P(clip dropped and image dropped) ~ 0.25, not 0.5
  assert abs((dropped[:, 0] & dropped[:, 1]).mean() - 0.25) < 0.03

"""'auto' model settings (`framedit_jax.models.cpu.defaults`): what they resolve to on this CPU and on an
accelerator, that an explicit value wins, that a config left at 'auto' builds exactly the model it resolves to,
and the one-line errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default
from framedit_jax.models.cpu import defaults
from framedit_jax.train import experiment
from framedit_jax.train.validate import validate_config

TINY = dict(hidden_size=32, num_heads=2, depth=2)


def test_auto_resolves_to_the_cpu_row_on_the_cpu_and_the_accelerator_row_elsewhere():
  assert jax.default_backend() == 'cpu'  # the test machine; the CI has no accelerator
  assert defaults.resolve() == {'scan_blocks': False, 'remat_policy': 'none', 'cpu_kernels': True}
  for backend in ('gpu', 'tpu'):
    assert defaults.resolve(backend=backend) == {
        'scan_blocks': True, 'remat_policy': 'dots_with_no_batch_dims_saveable', 'cpu_kernels': False}


def test_explicit_values_win_over_auto():
  assert defaults.resolve(scan_blocks=True, remat_policy='full', cpu_kernels='off') == {
      'scan_blocks': True, 'remat_policy': 'full', 'cpu_kernels': False}
  assert defaults.resolve(cpu_kernels='on', backend='gpu')['cpu_kernels'] is True
  assert defaults.resolve(scan_blocks=False, backend='tpu') == {
      'scan_blocks': False, 'remat_policy': 'dots_with_no_batch_dims_saveable', 'cpu_kernels': False}


def _config(**model):
  config = default.get_config()
  config.model.name = 'FrameDiTH-S/64-256/2-concat'
  config.model.dtype = 'float32'
  config.model.overrides = dict(TINY, qk_col_dim=8, v_col_dim=16, num_col_heads=4)
  config.data.num_frames = 4
  config.data.image_size = 8
  config.vae.name = 'identity'
  for k, v in model.items():
    config.model[k] = v
  return config


def test_the_default_config_is_auto_and_passes_validation():
  from configs import demo
  for config in (default.get_config(), demo.get_config(), demo.with_iddpm(demo.get_config())):
    assert (config.model.scan_blocks, config.model.remat_policy, config.model.cpu_kernels) == ('auto',) * 3
  validate_config(_config())
  validate_config(_config(scan_blocks=True, remat_policy='none', cpu_kernels='off'))


def _loss_and_grads(model):
  key = jax.random.PRNGKey(0)
  x = jax.random.normal(key, (2, 4, 8, 8, 4))
  t = jnp.array([5, 600])
  params = model.init({'params': key}, x, t)['params']
  leaves, treedef = jax.tree.flatten(params)
  params = jax.tree.unflatten(treedef, [p + 0.05 * jax.random.normal(jax.random.PRNGKey(i), p.shape)
                                        for i, p in enumerate(leaves)])
  return jax.jit(jax.value_and_grad(lambda p: jnp.mean(model.apply({'params': p}, x, t) ** 2)))(params)


def test_a_config_left_at_auto_builds_the_model_it_resolves_to():
  auto = experiment.build_model(_config(), 4, 8)
  explicit = experiment.build_model(_config(scan_blocks=False, remat_policy='none', cpu_kernels='on'), 4, 8)
  other = experiment.build_model(_config(scan_blocks=True, remat_policy='full', cpu_kernels='off'), 4, 8)
  assert (auto.scan_blocks, auto.remat_policy, auto.cpu_kernels) == (False, 'none', True)
  assert (other.scan_blocks, other.remat_policy, other.cpu_kernels) == (True, 'full', False)
  assert auto == explicit
  (la, ga), (le, ge) = _loss_and_grads(auto), _loss_and_grads(explicit)
  assert float(la) == float(le)
  jax.tree.map(np.testing.assert_array_equal, ga, ge)


@pytest.mark.parametrize('field,value,match', [
    ('scan_blocks', 'yes', "config.model.scan_blocks must be 'auto' or True/False"),
    ('cpu_kernels', 'maybe', "config.model.cpu_kernels must be 'auto' or on/off"),
])
def test_bad_values_are_one_line_errors(field, value, match):
  with pytest.raises(ValueError, match=match):
    defaults.resolve(**{field: value})


def test_the_old_grad_barrier_field_says_it_was_renamed():
  config = _config()
  config.model.grad_barrier = 'auto'
  with pytest.raises(ValueError, match='grad_barrier is now config.model.cpu_kernels'):
    experiment.build_model(config, 4, 8)

"""On a 2x2x2 (data x fsdp x frame) mesh the forward pass and one real train step equal one device.

The train step is framedit_jax.train.step.train_step, jitted with the state sharded by
framedit_jax.parallel.mesh.state_shardings (fsdp), the batch on (data, fsdp) and the model frame-parallel; the
reference is the same step with the plain model on device 0. Gradients are read from Adam's first moment
(mu = (1 - b1) g after one step). The 8-device cases run in one subprocess (tests/_parallel_results.py).
"""

import pytest

import _parallel_results

TOL = 1e-5
DESIGNS = ['framedit_g', 'framedit_h_concat', 'latte', 'dit3d']  # FrameDiT-G, FrameDiT-H, Local Factorized, Full 3D


@pytest.fixture(scope='module')
def results():
  return _parallel_results.results()


@pytest.mark.parametrize('design', DESIGNS)
def test_forward_on_2x2x2_matches_single_device(results, design):
  r = results['forward_222'][design]
  assert r['max_abs'] > 0.5
  assert r['max_diff'] < TOL, r
  assert r['out_sharding'] == "P(('data', 'fsdp'), 'frame')"


def _check_step(r):
  assert r['fsdp_sharded_params'] > 0  # the fsdp rule really sharded some parameters
  assert r['param_change'] > 100 * TOL and r['grad_max_abs'] > 100 * TOL  # the step does something measurable
  for key in ('loss', 'metrics', 'grads', 'params', 'opt_state', 'ema_params'):
    assert r[key] < TOL, (key, r)


@pytest.mark.parametrize('design', DESIGNS)
def test_train_step_on_2x2x2_matches_single_device(results, design):
  _check_step(results['train_step'][design])


def test_grad_accumulation_4x2_matches_one_batch_of_8(results):
  # FrameDiT-G: grad_accum_steps=4 (micro-batches of 2, frame-parallel on 2x2x2) vs one batch of 8 on one device.
  r = results['grad_accum']
  assert (r['micro_batches'], r['micro_batch_size']) == (4, 2)
  _check_step(r)

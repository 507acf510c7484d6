"""config.train.host_offload: the AdamW moments and the EMA live in host memory (pinned_host) between steps.

The step copies them into device memory and its out_shardings send the new values back, so the values of a run
must be bit-identical to the default run's, step for step, while the state's opt_state / ema_params arrays stay in
the host memory space (checked on the arrays themselves, and through a checkpoint save and restore). Sampling
reads the EMA from device memory. The TPU compiler's view (host vs device argument bytes) is checked in
tests/test_aot.py.
"""

import jax
import numpy as np
import pytest

import _train_utils as tu


def _run(host_offload: bool, steps: int = 3):
  from framedit_jax.train.experiment import Experiment  # pylint: disable=g-import-not-at-top
  # nan_policy='skip' also runs keep_if_finite on the host-resident fields (no step here is non-finite)
  config = tu.tiny_config('/unused', **{'train.host_offload': host_offload, 'train.nan_policy': 'skip'})
  exp = Experiment(config)
  state, shardings = exp.create_state()
  step = exp.train_step(shardings)
  rng = np.random.default_rng(0)
  spec = exp.task.batch_spec()
  losses = []
  for _ in range(steps):
    batch = {k: (rng.standard_normal(v.shape) if v.dtype.kind == 'f' else rng.integers(0, 1, v.shape)).astype(v.dtype)
             for k, v in spec.items()}
    state, metrics = step(state, batch, exp.frozen())
    losses.append(float(metrics['loss']))
  return exp, state, shardings, losses


def _kinds(tree):
  return {x.sharding.memory_kind for x in jax.tree.leaves(tree)}


@pytest.fixture(scope='module')
def runs():
  return _run(False), _run(True)


def test_offloaded_state_is_bit_identical_and_stays_on_host(runs):
  (_, ref, _, ref_losses), (_, off, _, off_losses) = runs
  assert ref_losses == off_losses
  for a, b in zip(jax.tree.leaves(ref), jax.tree.leaves(off)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert _kinds(off.opt_state) == _kinds(off.ema_params) == {'pinned_host'}
  assert _kinds(off.params) == {'device'}
  assert _kinds(ref.opt_state) == _kinds(ref.ema_params) == {'device'}


def test_offloaded_state_checkpoints_and_samples(runs, tmp_path):
  from framedit_jax.train import checkpoint as ckpt_lib  # pylint: disable=g-import-not-at-top
  (_, ref, _, _), (exp, off, shardings, _) = runs
  ckpt = ckpt_lib.Checkpointer(str(tmp_path / 'checkpoints'), async_save=False)
  ckpt.save(3, off)
  ckpt.wait()
  abstract, _ = exp.abstract_state()
  restored, _ = ckpt.restore_latest(abstract, shardings)
  ckpt.close()
  assert _kinds(restored.opt_state) == {'pinned_host'}
  for a, b in zip(jax.tree.leaves(off), jax.tree.leaves(restored)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  # Sampling from the host-resident EMA equals sampling from the same EMA in device memory.
  key = jax.random.PRNGKey(0)
  a = exp.generate(off.ema_params, key, 1, exp.default_labels(1))
  b = exp.generate(ref.ema_params, key, 1, exp.default_labels(1))
  np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


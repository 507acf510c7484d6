"""Subprocess body of tests/test_train_tasks.py: one real step of each task on 1 device and on a (data=2, fsdp=4)
mesh of 8 simulated CPU devices, through the one trainer's pieces (Experiment, task.host_batch, the jitted step).

  XLA_FLAGS=--xla_force_host_platform_device_count=8 python tests/_tasks_parallel_script.py DATA_DIR WORK OUT.json
"""

import json
import os
import sys

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _tasks_configs as tc  # pylint: disable=g-import-not-at-top,wrong-import-position

from framedit_jax.parallel import mesh as mesh_lib  # pylint: disable=wrong-import-position
from framedit_jax.train.experiment import Experiment  # pylint: disable=wrong-import-position


def jnp_float(x) -> bool:
  return np.issubdtype(np.dtype(x.dtype), np.floating)


def one_step(config, devices, workdir):
  exp = Experiment(config, devices=devices, workdir=workdir)
  state, shardings = exp.create_state()
  n_sharded = sum('fsdp' in str(a.sharding.spec) for a in jax.tree.leaves((state, exp.frozen())))
  it = exp.dataset()
  host = exp.task.host_batch(next(it), 0)
  it.close()
  step = exp.train_step(shardings)
  before = [np.asarray(jax.device_get(x), np.float64) for x in jax.tree.leaves(state)]  # the step donates state
  with jax.set_mesh(exp.mesh):
    batch = mesh_lib.host_to_global(host, exp.mesh)
    new, metrics = step(state, batch, exp.frozen())
  leaves = [np.asarray(jax.device_get(x), np.float64) for x in jax.tree.leaves(new)]
  floats = [jnp_float(x) for x in jax.tree.leaves(new)]
  changed = [a - b for a, b, f in zip(before, leaves, floats) if f]  # parameters and moments, not step / rng
  return float(metrics['loss']), leaves, n_sharded, max(float(np.abs(c).max()) if c.size else 0.0 for c in changed)


def main(data_dir, work, out):
  results = {}
  for name, config in tc.parallel_configs(data_dir).items():
    wd = os.path.join(work, name)
    with config.unlocked():
      config.mesh.data, config.mesh.fsdp, config.mesh.frame = 1, 1, 1
    loss1, leaves1, _, change = one_step(config, jax.devices()[:1], wd)
    with config.unlocked():
      config.mesh.data, config.mesh.fsdp = 2, 4
    loss8, leaves8, n_sharded, _ = one_step(config, jax.devices(), wd)
    results[name] = {'loss_1': loss1, 'loss_8': loss8, 'fsdp_sharded_leaves': n_sharded, 'state_change': change,
                     'state_max_diff': max(float(np.max(np.abs(a - b))) if a.size else 0.0
                                           for a, b in zip(leaves1, leaves8)),
                     'loss_rel_diff': abs(loss8 - loss1) / abs(loss1)}
  results['num_devices'] = jax.device_count()
  with open(out, 'w') as f:
    json.dump(results, f, indent=1)


if __name__ == '__main__':
  main(*sys.argv[1:4])

"""Two CPU processes joined by jax.distributed on localhost: SIGTERM reaching one of them stops both after the
same step (the stop decision is agreed with a multihost_utils sync), one checkpoint is saved, and the resumed
run ends bit-identical to an uninterrupted two-process run."""

import os
import signal
import socket
import subprocess

import jax
import numpy as np
import pytest

import _train_utils as tu
from test_train_resume import _latest_state  # pylint: disable=g-import-not-at-top

STEPS = {'train.num_steps': 8, 'train.ckpt_every': 8, 'sample.num_samples': 2}


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  """The sample_videos dataset, built once here (two processes must not build it concurrently)."""
  import ml_collections
  from framedit_jax.data import pipeline
  path = str(tmp_path_factory.mktemp('tfds'))
  pipeline.get_builder(ml_collections.ConfigDict({'data': {
      'dataset': 'sample_videos', 'data_dir': path, 'manual_dir': None, 'builder_config': None}}))
  return path


def _start(workdir, data_dir):
  s = socket.socket()
  s.bind(('localhost', 0))
  port = s.getsockname()[1]
  s.close()
  procs = []
  for pid in range(2):
    env = tu.env(1)
    env.update(JAX_COORDINATOR_ADDRESS=f'localhost:{port}', JAX_NUM_PROCESSES='2', JAX_PROCESS_ID=str(pid),
               JAX_PLATFORMS='cpu')
    procs.append(subprocess.Popen(tu.train_cmd(workdir, data_dir, **STEPS), env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, cwd=tu.REPO))
  return procs


def _finish(procs, head=('', '')):
  outs = []
  for p, h in zip(procs, head):
    rest, _ = p.communicate(timeout=600)
    outs.append(h + rest)
    assert p.returncode == 0, outs[-1][-3000:]
  return outs


def test_sigterm_to_one_process_stops_both_at_the_same_step(tmp_path, data_dir):
  ref = tmp_path / 'ref'
  _finish(_start(ref, data_dir))

  inter = tmp_path / 'inter'
  procs = _start(inter, data_dir)
  head = []
  for line in procs[1].stdout:
    head.append(line)
    if line.startswith('step 2/'):
      procs[1].send_signal(signal.SIGTERM)  # only process 1 is told
      break
  outs = _finish(procs, ('', ''.join(head)))
  stopped = []
  for out in outs:
    lines = [l for l in out.splitlines() if l.startswith('Stopped by signal')]
    assert len(lines) == 1, out[-3000:]
    stopped.append(int(lines[0].split(' at step ')[1].split(';')[0]))
  assert stopped[0] == stopped[1] and 2 <= stopped[0] < 8  # both processes stopped after the same step
  step, _ = _latest_state(inter)
  assert step == stopped[0]

  outs = _finish(_start(inter, data_dir))
  assert all(f'Resuming from checkpoint at step {step}' in out for out in outs)
  step_a, state_a = _latest_state(ref)
  step_b, state_b = _latest_state(inter)
  assert step_a == step_b == STEPS['train.num_steps']
  for a, b in zip(jax.tree.leaves(state_a), jax.tree.leaves(state_b)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

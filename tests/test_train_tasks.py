"""Every task on the one trainer (train/loop.py): T2V and DP-VAE resume bit-identically after SIGTERM, give the same
step on 8 simulated devices (data=2, fsdp=4) as on 1, T2V gradient accumulation equals one big batch, bad configs
fail in one line naming the field, and a damaged latest checkpoint falls back (or stops in one line) on every task.
"""

import json
import os
import signal
import subprocess
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

import _tasks_configs as tc
import _train_utils as tu


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp('tfds'))


def _cmd(task, workdir, data_dir, **extra):
  return [sys.executable, os.path.join(tu.REPO, 'launch', 'train.py'), f'--config={tc.CONFIG_FILES[task]}',
          f'--workdir={workdir}'] + tc.cli_overrides(task, data_dir, **extra)


def _raw_state(workdir, step=None):
  """(step, flat leaves) of a checkpoint's state, restored without a target (whatever task wrote it)."""
  mngr = ocp.CheckpointManager(os.path.join(workdir, 'checkpoints'), item_names=('state', 'data', 'config'))
  step = mngr.latest_step() if step is None else step
  state = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore())).state
  mngr.close()
  return step, [np.asarray(x) for x in jax.tree.leaves(state)]


@pytest.mark.parametrize('task', ['t2v', 'dpvae'])
def test_sigterm_saves_stop_step_and_resume_is_bit_identical(tmp_path, data_dir, task):
  ref = tmp_path / 'ref'
  r = tu.run(_cmd(task, ref, data_dir))
  assert r.returncode == 0, r.stderr[-3000:]

  inter = tmp_path / 'interrupted'
  proc = subprocess.Popen(_cmd(task, inter, data_dir, **{'train.ckpt_every': 100}), env=tu.env(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tu.REPO)
  lines = []
  for line in proc.stdout:
    lines.append(line)
    if line.startswith('step 1/'):
      proc.send_signal(signal.SIGTERM)
      break
  rest, _ = proc.communicate(timeout=600)
  out = ''.join(lines) + rest
  assert proc.returncode == 0, out[-3000:]
  assert 'Stopped by signal 15' in out, out[-3000:]
  stopped, _ = _raw_state(inter)
  assert 1 <= stopped < 4  # the stop step was saved (ckpt_every=100 would save nothing before step 4)

  r = tu.run(_cmd(task, inter, data_dir))
  assert r.returncode == 0, r.stderr[-3000:]
  assert f'Resuming from checkpoint at step {stopped}' in r.stdout
  step_a, leaves_a = _raw_state(ref)
  step_b, leaves_b = _raw_state(inter)
  assert step_a == step_b == 4 and len(leaves_a) == len(leaves_b)
  for a, b in zip(leaves_a, leaves_b):
    np.testing.assert_array_equal(a, b)


def _damage(workdir, step):
  """Overwrites the largest array file of checkpoint ``step`` with random bytes of the same size."""
  root = os.path.join(workdir, 'checkpoints', str(step), 'state')
  files = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]
  path = max(files, key=os.path.getsize)
  size = os.path.getsize(path)
  with open(path, 'wb') as f:
    f.write(np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes())
  return path


@pytest.mark.parametrize('task', ['video', 't2v', 'dpvae'])
def test_damaged_latest_checkpoint_falls_back_or_stops_in_one_line(tmp_path, data_dir, task, capsys):
  from framedit_jax.train.loop import train_and_evaluate
  work = str(tmp_path / 'w')
  cfg = lambda **kw: tc.tiny(task, data_dir, **{'train.ckpt_every': 2, 'train.keep': 3, **kw})
  train_and_evaluate(cfg(**{'train.num_steps': 4}), work)
  _damage(work, 4)
  capsys.readouterr()
  state = train_and_evaluate(cfg(**{'train.num_steps': 5}), work)
  out = capsys.readouterr().out
  falls = [line for line in out.splitlines() if 'cannot be restored' in line]
  assert len(falls) == 1 and 'checkpoint step 4' in falls[0] and 'falling back to step 2' in falls[0], out
  assert 'Resuming from checkpoint at step 2' in out and int(state.step) == 5
  assert os.path.isdir(os.path.join(work, 'checkpoints', '4.damaged'))
  assert os.path.isdir(os.path.join(work, 'checkpoints', '4'))  # step 4 was trained again and saved

  # Every step damaged: one line naming the directory, never a silent restart from step 0.
  for step in (2, 4, 5):
    _damage(work, step)
  with pytest.raises(ValueError) as err:
    train_and_evaluate(cfg(**{'train.num_steps': 6}), work)
  msg = str(err.value)
  assert 'no checkpoint in' in msg and os.path.join(work, 'checkpoints') in msg and '\n' not in msg, msg


def _bad_cases(task):
  lr = 'dpvae.optim.lr' if task == 'dpvae' else 'optim.lr'
  name = ('vae.name', 'NoSuchVAE', 'config.vae.name') if task == 'dpvae' else (
      'model.name', 'NoSuchModel', "config.model.name='NoSuchModel' is not a registered model")
  return [('data.num_framez', 3, "config.data has no field 'num_framez'"),
          (lr, -1.0, f'config.{lr}=-1.0'), (lr, 0.0, f'config.{lr}=0.0'),
          ('data.num_frames', 0, 'config.data.num_frames=0'), name,
          ('vae.name', 'NoSuchVAE', "config.vae.name='NoSuchVAE'"),
          ('train.num_steps', -5, 'config.train.num_steps=-5'),
          ('data.global_batch_size', 0, 'config.data.global_batch_size=0')]


@pytest.mark.parametrize('task,field,value,expected',
                         [(t, *c) for t in ('t2v', 'dpvae') for c in _bad_cases(t)],
                         ids=[f'{t}-{c[0]}={c[1]}' for t in ('t2v', 'dpvae') for c in _bad_cases(t)])
def test_bad_config_is_one_line_naming_the_field(tmp_path, task, field, value, expected):
  r = subprocess.run([sys.executable, os.path.join(tu.REPO, 'launch', 'train.py'),
                      f'--config={tc.CONFIG_FILES[task]}', f'--workdir={tmp_path}', f'--config.{field}={value}'],
                     env=tu.env(), capture_output=True, text=True, timeout=300, cwd=tu.REPO)
  assert r.returncode == 1, r.stderr[-2000:]
  errors = [line for line in r.stderr.splitlines() if line.startswith('error:')]
  assert len(errors) == 1 and expected in errors[0], r.stderr[-2000:]
  assert 'Traceback' not in r.stderr
  assert not os.path.exists(os.path.join(tmp_path, 'checkpoints'))  # stopped before anything ran


@pytest.mark.parametrize('task', ['video', 't2v', 'dpvae'])
def test_mistyped_field_in_a_config_file_is_one_line(task):
  from framedit_jax.train.validate import validate_config
  config = tc.tiny(task, '/unused')
  with config.unlocked():
    config.data.num_framez = 3
  with pytest.raises(ValueError) as err:
    validate_config(config)
  assert str(err.value) == 'config.data.num_framez is not a field; did you mean config.data.num_frames?'


def test_task_groups_are_read_only_by_their_task():
  from framedit_jax.train.validate import validate_config
  config = tc.tiny('t2v', '/unused')
  with config.unlocked():
    config.task = 'video'
  with pytest.raises(ValueError, match=r"config\.(text|lora|data\.demo_captions) is only read by config.task='t2v'"):
    validate_config(config)
  config = tc.tiny('video', '/unused')
  with config.unlocked():
    config.dpvae = {'t_g': 4}
  with pytest.raises(ValueError, match=r"config.dpvae is only read by config.task='dpvae'"):
    validate_config(config)


@pytest.fixture(scope='module')
def parallel(tmp_path_factory, data_dir):
  work = tmp_path_factory.mktemp('par')
  out = work / 'out.json'
  r = tu.run([sys.executable, os.path.join(tu.REPO, 'tests', '_tasks_parallel_script.py'), data_dir, str(work),
              str(out)], num_devices=8, timeout=1500)
  assert r.returncode == 0, r.stderr[-3000:]
  return json.loads(out.read_text())


@pytest.mark.parametrize('case', ['t2v', 't2v_lora', 'dpvae'])
def test_same_step_on_8_devices_data2_fsdp4_as_on_1(parallel, case):
  r = parallel[case]
  assert parallel['num_devices'] == 8
  assert r['fsdp_sharded_leaves'] > 0  # the fsdp rule really sharded part of the state (LoRA: the frozen base)
  if case == 't2v_lora':
    # A fresh adaLN-Zero base has zero gates, so every LoRA gradient (and the step's change) is exactly zero at
    # step 0 up to float rounding (exactly 0 with LLVM's default passes, 7e-9 at conftest's -O0 test flags); here only
    # the loss through the fsdp-sharded frozen base is compared (see the closing note of issue 25).
    assert r['state_change'] < 1e-6, r
  else:
    assert r['state_change'] > 1e-3
  np.testing.assert_allclose(r['loss_8'], r['loss_1'], rtol=1e-5)
  assert r['state_max_diff'] < 2e-5, r


def test_t2v_grad_accum_2_equals_one_step_at_twice_the_batch(data_dir, tmp_path):
  """One T2V step with optim.grad_accum_steps=2 (2 micro-batches of 2) == one step on the batch of 4."""
  from framedit_jax.parallel import mesh as mesh_lib
  from framedit_jax.train.experiment import Experiment
  out = {}
  for k in (1, 2):
    config = tc.tiny('t2v', data_dir, **{'data.global_batch_size': 4, 'optim.grad_accum_steps': k,
                                         'optim.eps': 1.0, 'optim.lr': 0.1})  # update ~ lr * g (see _parallel_script)
    exp = Experiment(config, devices=jax.devices()[:1], workdir=str(tmp_path))
    state, shardings = exp.create_state()
    it = exp.dataset()
    host = exp.task.host_batch(next(it), 0)
    it.close()
    before = jax.device_get(state.params)  # the step donates the state
    with jax.set_mesh(exp.mesh):
      new, metrics = exp.train_step(shardings)(state, mesh_lib.host_to_global(host, exp.mesh), exp.frozen())
    out[k] = (float(metrics['loss']), jax.device_get(new.params), before)
  np.testing.assert_allclose(out[2][0], out[1][0], rtol=1e-5)
  moved = max(float(np.abs(a - b).max()) for a, b in zip(jax.tree.leaves(out[1][1]), jax.tree.leaves(out[1][2])))
  assert moved > 1e-3
  for a, b in zip(jax.tree.leaves(out[1][1]), jax.tree.leaves(out[2][1])):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-6)

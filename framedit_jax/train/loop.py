"""``train_and_evaluate(config, workdir)``: THE training loop of every task, resumable at any point.

Every task (``config.task``: 'video', 't2v', 'dpvae'; ``framedit_jax.train.tasks``) runs here; a task only
supplies its batch source, state init, step function, samples and export (``tasks.base.Task``).
Order of work (every user error surfaces before anything is compiled):
  1. ``Experiment(config)`` validates the config, builds mesh and task (VAE, text encoder, model); the dataset
     opens (one-line errors if anything is missing);
  2. the sharded state is created and the newest restorable checkpoint in ``<workdir>/checkpoints`` (state +
     data position) restored if any: a damaged latest step falls back to the previous one in one line, and a
     workdir whose checkpoints all fail to restore stops in one line instead of restarting from step 0;
  3. loop: host batch -> global arrays -> (VAE encode) -> jitted step; clu periodic actions report progress,
     checkpoint every ``ckpt_every`` steps, sample every ``sample_every`` and compute a small FVD every
     ``fvd_every`` steps (video task); on SIGTERM/SIGINT (on any host: the decision is agreed across processes)
     or an orbax-announced preemption every process saves the same step and exits with status 0;
  4. the task's final samples (EMA weights) and export.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal

from absl import logging
from clu import periodic_actions
import jax
import numpy as np

from framedit_jax.parallel import mesh as mesh_lib
from framedit_jax.train import checkpoint as ckpt_lib
from framedit_jax.train import experiment as experiment_lib
from framedit_jax.train import generate as gen
from framedit_jax.train import metrics as metrics_lib


class _StopSignal:
  """Turns SIGTERM/SIGINT into a flag the loop checks between steps (then it saves and exits)."""

  def __init__(self):
    self.received: int | None = None
    self._old = {}

  def __enter__(self):
    for sig in (signal.SIGTERM, signal.SIGINT):
      try:
        self._old[sig] = signal.signal(sig, self._handler)
      except ValueError:  # not the main thread
        pass
    return self

  def _handler(self, signum, frame):
    del frame
    self.received = signum

  def __exit__(self, *exc):
    for sig, old in self._old.items():
      signal.signal(sig, old)


def _log_batch_hash(workdir: str, step: int, host: dict[str, np.ndarray]) -> None:
  """Appends ``{"step", "process", "sha1"}`` of this process's batch to ``<workdir>/batch_hashes.jsonl``."""
  h = hashlib.sha1()
  for k in sorted(host):
    h.update(np.ascontiguousarray(host[k]).tobytes())
  with open(os.path.join(workdir, 'batch_hashes.jsonl'), 'a') as f:
    f.write(json.dumps({'step': step, 'process': jax.process_index(), 'sha1': h.hexdigest()}) + '\n')


def stop_agreed(local_stop: bool) -> bool:
  """True on every process when any process asked to stop (a ``multihost_utils`` sync point).

  With one process this is ``local_stop``; with several, every process must call it at the same step, so all
  of them stop after the same step and save the same checkpoint (no host hangs in the collective save).
  """
  if jax.process_count() == 1:
    return bool(local_stop)
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return bool(np.max(multihost_utils.process_allgather(np.asarray([int(bool(local_stop))], np.int32))))


def fvd_extractor():
  """The I3D feature extractor of the periodic FVD (a function so tests can swap it for a cheap one)."""
  from framedit_jax.eval.fvd import I3DFeatureExtractor  # pylint: disable=g-import-not-at-top
  return I3DFeatureExtractor()


class _Run:
  """The mutable state of one training run and the periodic callbacks that act on it."""

  def __init__(self, exp, workdir, ckpt, data_it, state, start_step, writer, progress):
    self.exp, self.config, self.workdir, self.ckpt = exp, exp.config, workdir, ckpt
    self.data_it, self.state, self.step, self.writer, self.progress = data_it, state, start_step, writer, progress
    self.pending = None  # metrics of the previous step, checked one step late to keep the device busy
    self.last_saved = start_step if ckpt.latest_step() is not None else None
    self.sample_key = jax.random.PRNGKey(self.config.seed + 1)
    self._fvd = {}

  def train(self, train_step, encode, frozen) -> None:
    """One step: host batch -> global arrays -> (VAE encode) -> jitted step; metrics checked one step late."""
    host = self.exp.task.host_batch(next(self.data_it), self.step)
    if self.config.train.log_batch_hashes:
      _log_batch_hash(self.workdir, self.step + 1, host)
    with jax.set_mesh(self.exp.mesh):
      batch = mesh_lib.host_to_global(host, self.exp.mesh)
      if encode is not None:
        batch = encode(batch, jax.random.fold_in(self.sample_key, self.step))
      self.state, metrics = train_step(self.state, batch, frozen)
    self.flush_metrics()
    self.pending = (self.step + 1, metrics)
    self.step += 1

  def flush_metrics(self) -> None:
    if self.pending is not None:
      self.progress.check_and_log(*self.pending)
      self.pending = None

  def save(self, step: int, **_) -> None:
    """Saves ``step`` (after checking its metrics: a non-finite state is never saved)."""
    self.flush_metrics()
    if self.last_saved != step:
      self.ckpt.save(step, self.state, self.data_it.get_state(), self.config)
      self.last_saved = step

  def samples(self, step: int, **_) -> list[str]:
    """The task's samples of the current state (video: EMA mp4s + grid + strip in ``<workdir>/samples``)."""
    return self.exp.task.samples(self.state, step, self.workdir, self.writer, self.exp.frozen())

  def real_clips(self, n: int) -> np.ndarray:
    """``n`` real clips in pixels ``(n, num_frames, H, W, 3)`` from a separate stream; latents are decoded."""
    it, real, nf = self.exp.dataset(seed_offset=7919), [], int(self.config.data.num_frames)
    while sum(len(r) for r in real) < n:
      video = np.asarray(next(it)['video'])[:, :nf]
      if self.config.data.get('use_latents', False) and not self.exp.pixel_space:
        video = gen.addressable_to_host(self.exp.vae.decode_video(video))
      real.append(np.clip(video, -1.0, 1.0))
    return np.concatenate(real)[:n]

  def fvd(self, step: int, **_) -> float:
    """A small FVD (I3D) of ``train.fvd_num_videos`` EMA samples vs real clips, written as ``eval/fvd``."""
    from framedit_jax.eval.fvd import fvd_from_arrays  # pylint: disable=g-import-not-at-top
    n, bs = int(self.config.train.fvd_num_videos), int(self.config.sample.batch_size)
    if not self._fvd:
      self._fvd = {'real': self.real_clips(n), 'extractor': fvd_extractor()}
    fake = [self.exp.generate(self.state.ema_params, jax.random.fold_in(self.sample_key, 10_000 + i), bs,
                              self.exp.default_labels(bs, i)) for i in range(0, n, bs)]
    value = float(fvd_from_arrays(self._fvd['real'], np.concatenate(fake)[:n], self._fvd['extractor']))
    self.writer.write_scalars(step, {'eval/fvd': value})
    print(f'step {step}: FVD({n} samples vs real) = {value:.2f}', flush=True)
    return value

  def actions(self, num_steps: int) -> list:
    """clu periodic actions, called after every step with the number of completed steps."""
    t = self.config.train
    every = lambda n: int(n) or None
    acts = [periodic_actions.ReportProgress(num_train_steps=num_steps, writer=self.writer,
                                            every_steps=every(t.log_every), every_secs=None),
            periodic_actions.PeriodicCallback(every_steps=every(t.ckpt_every), on_steps=[num_steps],
                                              callback_fn=self.save)]
    if t.sample_every:
      acts.append(periodic_actions.PeriodicCallback(
          every_steps=int(t.sample_every), callback_fn=lambda step, t: step < num_steps and self.samples(step)))
    if t.fvd_every:
      acts.append(periodic_actions.PeriodicCallback(every_steps=int(t.fvd_every), callback_fn=self.fvd))
    acts[0](self.step)  # starts ReportProgress's clock (its first call never reports); callbacks start at step + 1
    return acts


def train_and_evaluate(config, workdir: str):
  """Trains (or resumes) the task described by ``config`` in ``workdir``; returns the final state.

  Raises:
    ValueError / FileNotFoundError: bad config, missing dataset or weights, or a workdir whose checkpoints
      cannot be restored (one line, before compiling the step).
    FloatingPointError: a non-finite loss or gradient with ``train.nan_policy='halt'``; the last
      checkpoint written before it stays intact.
  """
  os.makedirs(workdir, exist_ok=True)
  exp = experiment_lib.Experiment(config, workdir=workdir)
  task = exp.task
  data_it = exp.dataset()
  state, shardings = exp.create_state()
  print(task.describe(state), flush=True)

  ckpt = ckpt_lib.Checkpointer(ckpt_lib.checkpoint_dir(workdir), keep=config.train.keep,
                               keep_period=config.train.keep_period)
  state, data_state, start_step = exp.restore(ckpt, state, shardings)
  if ckpt.latest_step() is not None:
    if data_state:
      data_it.set_state(data_state)
    logging.info('Resumed from %s at step %d.', ckpt.directory, start_step)
    print(f'Resuming from checkpoint at step {start_step} in {ckpt.directory}', flush=True)

  num_steps = int(config.train.num_steps)
  writer = metrics_lib.create_writer(workdir)
  progress = metrics_lib.Progress(num_steps, start_step, config, writer, flops_per_step=task.flops_per_step(),
                                  peak_flops=config.train.get('peak_tflops', 0.0) * 1e12 or None,
                                  log_keys=task.log_keys)
  run = _Run(exp, workdir, ckpt, data_it, state, start_step, writer, progress)
  train_step, encode, frozen = exp.train_step(shardings), exp.encoder(), exp.frozen()
  actions = run.actions(num_steps)
  try:
    with _StopSignal() as stop:
      while run.step < num_steps:
        run.train(train_step, encode, frozen)
        for action in actions:
          action(run.step)
        if stop_agreed(stop.received is not None) or ckpt.reached_preemption(run.step):
          run.save(run.step)
          ckpt.close()
          print(f'Stopped by signal {stop.received} at step {run.step}; checkpoint saved.', flush=True)
          writer.flush()
          return run.state
      run.flush_metrics()
  except BaseException:
    ckpt.wait()  # let an in-flight save of a good state finish
    raise
  ckpt.wait()
  if start_step < num_steps or not os.path.isdir(os.path.join(workdir, 'samples')):
    run.samples(run.step)
  task.export(run.state, workdir, frozen)
  ckpt.close()
  writer.flush()
  return run.state

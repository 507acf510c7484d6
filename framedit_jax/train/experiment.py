"""The experiment layer: everything a config builds, in one place, for every task.

`Experiment(config)` validates the config (one-line errors before anything compiles), makes the device mesh
and the task named by ``config.task`` (``framedit_jax.train.tasks``: 'video' class-conditional/unconditional
diffusion, 't2v' text-to-video, 'dpvae' the DP-VAE), and hands out the pieces every entry point needs:

  * ``abstract_state()``: ``(abstract state, state_shardings)`` by ``jax.eval_shape``, nothing allocated;
  * ``create_state()`` / ``restore(ckpt, target, shardings)``: the sharded state (``jit(init, out_shardings)``)
    and its orbax restore (falling back past a damaged latest checkpoint);
  * ``dataset(split)``: this process's batch iterator; ``batch_shardings()``, ``abstract_batch()``;
  * ``train_step(state_shardings)``: THE jitted, donated step ``step(state, batch, frozen)``; ``frozen()``;
    with ``config.train.host_offload`` the task's ``host_offload_fields`` (optimizer state, EMA) are kept in
    host memory (``pinned_host``) between steps; the optimizer update copies them in once the gradients exist;
  * ``encoder()``: the in-loop VAE encoder (or None);
  * video task: ``generate(params, key, num, labels)`` (``generate.Sampler``, compiled once per shape, params as arguments), ``default_labels``;
  * ``load_params(workdir, checkpoint)``: sampling weights of a training run or params of a converted checkpoint.

Used by ``train/loop.py`` (the one training loop), ``train/sample_run.py`` (``launch/sample.py``),
``launch/{train,eval,convert_checkpoint}.py`` and
``benchmarks/`` (e.g. ahead-of-time compilation: ``exp.train_step(sh).lower(abstract, exp.abstract_batch(),
exp.abstract_frozen())``).
"""

from __future__ import annotations

import os

import jax
import numpy as np

from framedit_jax.parallel import mesh as mesh_lib
from framedit_jax.train import generate as gen
from framedit_jax.train import step as step_lib
from framedit_jax.train import tasks as tasks_lib
from framedit_jax.train.tasks.video import (build_model, init_state, latent_frames, make_dataset,  # noqa: F401
                                            training_diffusion)
from framedit_jax.train.validate import validate_config


class Experiment:
  """Mesh, task and step of one config (see the module docstring).

  Args:
    config: a full run config (configs/default.py fields, plus the task's groups).
    devices: devices of the mesh (default: all).
    workdir: the training-run directory, for tasks that keep files there (T2V text cache); optional.
  Raises:
    ValueError / FileNotFoundError: invalid config or missing VAE weights (one line, nothing compiled yet).
  """

  def __init__(self, config, *, devices=None, workdir: str | None = None):
    validate_config(config)
    self.config = config
    self.mesh = mesh_lib.make_mesh(config.mesh, devices=devices)
    self.task = tasks_lib.make_task(config, self.mesh, workdir)
    validate_config(config, mesh=self.mesh, vae=getattr(self.task, 'vae', None))
    self._frozen = None

  def __getattr__(self, name):  # the task's own pieces: model, vae, latent_shape, generate, default_labels, ...
    if name == 'task':
      raise AttributeError(name)
    return getattr(self.task, name)

  # ------------------------------------------------------------------ state
  def _rng(self):
    return jax.random.PRNGKey(self.config.seed)

  def abstract_state(self):
    """``(abstract state, state_shardings)`` without allocating anything."""
    abstract = jax.eval_shape(self.task.init_state, self._rng())
    shardings = self.task.state_shardings(abstract)
    if self.config.train.host_offload:  # optimizer state / EMA live in host memory between steps
      shardings = shardings.replace(**{f: mesh_lib.with_memory_kind(getattr(shardings, f), mesh_lib.HOST_MEMORY)
                                       for f in self.task.host_offload_fields})
    return abstract, shardings

  def create_state(self):
    """``(state, state_shardings)``: the freshly initialised sharded state (plus the task's init load)."""
    with jax.set_mesh(self.mesh):
      _, shardings = self.abstract_state()
      state = jax.jit(self.task.init_state, out_shardings=shardings)(self._rng())
      return self.task.load_init(state, shardings), shardings

  def restore(self, ckpt, target, shardings):
    """``(state, data_state, step)`` of the newest restorable checkpoint of ``ckpt``, or ``(target, {}, 0)``
    when there is none (see ``Checkpointer.restore_latest``: a damaged latest step falls back, in one line)."""
    if ckpt.latest_step() is None:
      return target, {}, 0
    state, data_state = ckpt.restore_latest(target, shardings)
    return state, data_state, int(state.step)

  # ------------------------------------------------------------------ data and step
  def dataset(self, split: str | None = None, *, seed_offset: int = 0):
    """This process's batch iterator of ``split`` (default ``data.split``); ``seed_offset`` gives a separate
    clip stream (e.g. real clips for FVD) without touching the training stream."""
    config = self.config
    if seed_offset:
      config = config.copy_and_resolve_references()
      with config.unlocked():
        config.seed = self.config.seed + seed_offset
    return self.task.dataset(split or self.config.data.split, process_index=jax.process_index(),
                             process_count=jax.process_count(), config=config)

  def batch_shardings(self):
    """Shardings of the global batch dict (batch axis over data*fsdp)."""
    return self.task.batch_shardings()

  def abstract_batch(self):
    """``jax.ShapeDtypeStruct``s of one global batch, with their shardings."""
    sh = self.batch_shardings()
    return {k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=sh[k]) for k, v in self.task.batch_spec().items()}

  def frozen(self):
    """The task's constant step inputs (LoRA base weights, key-frame VAE), placed with their shardings once."""
    if self._frozen is None:
      frozen = self.task.frozen()
      if frozen is not None:
        with jax.set_mesh(self.mesh):
          frozen = jax.device_put(frozen, self.task.state_shardings(frozen))
      self._frozen = (frozen,)
    return self._frozen[0]

  def abstract_frozen(self):
    frozen = jax.eval_shape(self.task.frozen)
    if frozen is None:
      return None
    sh = self.task.state_shardings(frozen)
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), frozen, sh)

  def train_step(self, state_shardings):
    """The jitted, donated ``step(state, batch, frozen) -> (state, metrics)`` (``step.jit_train_step``)."""
    frozen = jax.eval_shape(self.task.frozen)
    frozen_sh = None if frozen is None else self.task.state_shardings(frozen)
    return step_lib.jit_train_step(self.task.step_fn(), state_shardings, self.batch_shardings(), frozen_sh)

  def encoder(self):
    """``encode(batch, key) -> batch`` on the global batch before the step (VAE encode of pixels), or None."""
    return self.task.encoder()

  # ------------------------------------------------------------------ weights
  def load_params(self, workdir: str | None = None, checkpoint: str | None = None):
    """Sampling weights (EMA; LoRA merged) of the newest checkpoint in ``workdir``, or the params of a converted
    ``checkpoint`` dir.

    Raises:
      FileNotFoundError: no checkpoint found (one line naming the directory).
    """
    import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
    from framedit_jax.train import checkpoint as ckpt_lib  # pylint: disable=g-import-not-at-top
    if checkpoint:
      path = os.path.abspath(checkpoint)
      if not os.path.exists(path):
        raise FileNotFoundError(f'--checkpoint {path} does not exist; write one with launch/convert_checkpoint.py.')
      restored = ocp.StandardCheckpointer().restore(path)
      return restored['params'] if 'params' in restored else restored
    ckpt = ckpt_lib.Checkpointer(ckpt_lib.checkpoint_dir(workdir), async_save=False)
    try:
      if ckpt.latest_step() is None:
        raise FileNotFoundError(f'No checkpoint in {ckpt.directory}; train first or pass --checkpoint.')
      with jax.set_mesh(self.mesh):
        abstract, shardings = self.abstract_state()
        state, _ = ckpt.restore_latest(abstract, shardings, rename_damaged=False)
    finally:
      ckpt.close()
    return self.task.eval_params(state, self.frozen())

"""The task interface: what one kind of training run supplies to the shared trainer.

There is one training loop (`framedit_jax.train.loop.train_and_evaluate`) and one experiment layer
(`framedit_jax.train.experiment.Experiment`). They own everything that is the same for every run: config
validation, the device mesh and NamedShardings, the jitted donated step (`step.jit_train_step`), gradient
accumulation helpers (`step.accumulate_grads`), orbax checkpoints holding the iterator position (with the
damaged-checkpoint fallback), the SIGTERM/preemption stop agreed across hosts, the NaN policy, clu metrics /
progress / MFU and the periodic-sample schedule. A `Task` supplies only what differs:

  ====================  =======================================================================================
  batch source          ``dataset(split, process_index=, process_count=)``: a host-local iterator with
                        ``get_state()/set_state()/close()`` (Grain pipelines; its state is checkpointed);
                        ``host_batch(raw, step)`` turns one raw batch into the step's numpy arrays;
                        ``batch_shardings()`` gives their NamedShardings (batch axis over data*fsdp).
  model + state init    ``init_state(rng) -> state`` (a pytree with an int32 ``step`` leaf; traceable, so the
                        experiment runs it under ``jax.eval_shape`` for the abstract state and under
                        ``jit(out_shardings=)`` for the real one); ``load_init(state, shardings)`` applies a
                        host-side partial load (image-DiT init, a Latte-1 checkpoint) to the fresh state;
                        ``frozen()`` returns constant step inputs that are neither trained nor checkpointed
                        (LoRA base weights, the key-frame VAE), sharded like the state.
  loss / step           ``step_fn() -> f(state, batch, frozen) -> (state, metrics)``: pure and not jitted; the
                        metrics hold float32 scalars ``loss`` and ``finite`` (1.0 when loss and gradients are
                        finite) at least. ``encoder()``: an optional jitted ``(batch, key) -> batch`` run on the
                        global batch before the step (the in-loop VAE encode of pixel clips).
  samples               ``samples(state, step, workdir, writer, frozen) -> paths`` (periodic and final samples).
  export                ``export(state, workdir, frozen)`` at the end of a run (the T2V weights, the DP-VAE codec).
  ====================  =======================================================================================

Everything a deviceless tool needs without running anything (e.g. ahead-of-time compilation):

    exp = Experiment(config)                      # validates; builds mesh, task
    abstract, shardings = exp.abstract_state()    # jax.eval_shape of task.init_state, no allocation
    step = exp.train_step(shardings)              # the jitted, donated step: step(state, batch, frozen)
    step.lower(abstract, exp.abstract_batch(), exp.abstract_frozen()).compile()

Tasks are registered by ``config.task`` in ``framedit_jax.train.tasks.TASKS``.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import numpy as np

from framedit_jax.parallel import mesh as mesh_lib


class Task:
  """Base class of a training task (see the module docstring). ``config`` and ``mesh`` are set at construction.

  Subclasses must implement ``dataset``, ``batch_spec``, ``init_state`` and ``step_fn``; the rest have defaults.
  """

  name = 'task'
  log_keys: tuple[str, ...] = ('loss',)  # metrics shown on the console progress line (all go to TensorBoard)
  # State fields kept in host memory between steps with config.train.host_offload (the step reads them once).
  host_offload_fields: tuple[str, ...] = ('opt_state', 'ema_params')

  def __init__(self, config, mesh):
    self.config, self.mesh = config, mesh

  # ------------------------------------------------------------------ data
  def dataset(self, split: str, *, process_index: int = 0, process_count: int = 1, config=None):
    """This process's batch iterator of ``split``; ``config`` (default the task's) may carry another seed."""
    raise NotImplementedError

  def host_batch(self, raw: dict, step: int) -> dict[str, np.ndarray]:
    """The step's host arrays from one raw batch of ``dataset`` (default: unchanged)."""
    del step
    return {k: np.asarray(v) for k, v in raw.items()}

  def batch_spec(self) -> dict[str, jax.ShapeDtypeStruct]:
    """Global shapes/dtypes of ``host_batch``'s arrays (for AOT lowering and the batch shardings)."""
    raise NotImplementedError

  def batch_shardings(self) -> dict[str, Any]:
    return {k: mesh_lib.batch_sharding(self.mesh, len(v.shape)) for k, v in self.batch_spec().items()}

  # ------------------------------------------------------------------ state
  def init_state(self, rng: jax.Array):
    raise NotImplementedError

  def state_shardings(self, abstract_state) -> Any:
    return mesh_lib.state_shardings(self.mesh, abstract_state)

  def load_init(self, state, shardings):
    del shardings
    return state

  def frozen(self) -> Any:
    return None

  def num_params(self, state) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(state.params))

  def describe(self, state) -> str:
    return f'{self.name}: {self.num_params(state) / 1e6:.2f}M trainable parameters'

  # ------------------------------------------------------------------ step
  def step_fn(self) -> Callable:
    raise NotImplementedError

  def encoder(self) -> Callable | None:
    return None

  def flops_per_step(self) -> float | None:
    return None

  # ------------------------------------------------------------------ outputs
  def samples(self, state, step: int, workdir: str, writer, frozen=None) -> list[str]:
    del state, step, workdir, writer, frozen
    return []

  def export(self, state, workdir: str, frozen=None) -> None:
    """Called on every process at the end of a run (gather with ``host_tree``; write on process 0)."""
    del state, workdir, frozen

  def eval_params(self, state, frozen=None):
    """The weights one samples from (EMA params, LoRA merged with ``frozen``), for ``Experiment.load_params``."""
    del frozen
    return mesh_lib.to_device_memory(state.ema_params)


def host_tree(tree):
  """``tree`` as host numpy arrays, gathered across processes when arrays span several hosts."""
  if jax.process_count() == 1:
    return jax.device_get(tree)
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return multihost_utils.process_allgather(tree, tiled=True)

"""Orbax checkpointing: async, atomic, auto-resume, restore into the current mesh's shardings.

A checkpoint directory ``<workdir>/checkpoints/<step>/`` holds three items:

* ``state``  — the ``TrainState`` pytree (params, opt_state, ema_params, step, rng), ``StandardSave``;
* ``data``   — the input iterator position (JSON), so a resumed run sees exactly the batches it would have;
* ``config`` — the run's config as JSON, for humans and for ``launch/sample.py``.

Orbax writes each step into a temporary directory and renames it when complete, so a process killed
mid-save (even ``kill -9``) leaves the previous step as the latest readable checkpoint. A step that is complete
but cannot be restored (a damaged or truncated array file) is handled by ``restore_latest``: the run falls back
to the previous step with one printed line (the damaged directory is renamed ``<step>.damaged`` so that the
resumed run can save that step again), and a directory none of whose steps restores stops with one line naming
it; a run never starts from step 0 over a directory that holds checkpoints.
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import orbax.checkpoint as ocp
from etils import epath


def _to_abstract(tree: Any, shardings: Any | None) -> Any:
  if shardings is None:
    return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)
  return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree, shardings)


class Checkpointer:
  """Thin wrapper around one ``ocp.CheckpointManager`` with composite items.

  Args:
    directory: where step directories live (created if missing).
    keep: number of most recent checkpoints to keep (``config.train.keep``).
    keep_period: additionally keep every step divisible by this (0 = off; ``config.train.keep_period``).
    async_save: save in a background thread (``wait()`` before exit).
  """

  def __init__(self, directory: str, *, keep: int = 3, keep_period: int = 0, async_save: bool = True):
    self.directory = epath.Path(directory)
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep,
        keep_period=keep_period or None,
        enable_async_checkpointing=async_save,
        create=True,
    )
    self._manager = ocp.CheckpointManager(self.directory, options=options,
                                          item_names=('state', 'data', 'config'))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def save(self, step: int, state: Any, data_state: dict | None = None, config: Any = None,
           force: bool = True) -> bool:
    """Starts an (async) save of ``state`` at ``step``. Returns whether a save was started."""
    config_json = json.loads(config.to_json_best_effort()) if config is not None else {}
    return self._manager.save(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            data=ocp.args.JsonSave(data_state or {}),
            config=ocp.args.JsonSave(config_json),
        ),
        force=force,
    )

  def restore(self, target: Any, shardings: Any | None = None, step: int | None = None
              ) -> tuple[Any, dict]:
    """Restores ``(state, data_state)`` of ``step`` (default latest) into ``target``'s structure.

    Args:
      target: a concrete or abstract pytree with the state's structure, shapes and dtypes.
      shardings: the shardings the restored arrays get (the *current* mesh, so a run can resume on a
        different device count). None keeps ``target``'s own shardings.
    Raises:
      FileNotFoundError: if there is no checkpoint.
    """
    step = self.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f'No checkpoint in {self.directory}.')
    abstract = _to_abstract(target, shardings)
    restored = self._manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract), data=ocp.args.JsonRestore()))
    return restored.state, dict(restored.data or {})

  def restore_latest(self, target: Any, shardings: Any | None = None, *, rename_damaged: bool = True
                     ) -> tuple[Any, dict]:
    """``restore`` of the newest step that restores, newest first.

    A step that fails prints ``checkpoint step N in DIR cannot be restored (...); falling back to step M`` and,
    with ``rename_damaged``, is renamed to ``N.damaged`` (by process 0; every process then re-reads the
    directory).
    Raises:
      ValueError: no step restores (one line naming the directory and the newest step's error).
    """
    steps = sorted(self.all_steps(), reverse=True)
    first_error = None
    for i, step in enumerate(steps):
      try:
        return self.restore(target, shardings, step=step)
      except Exception as e:  # pylint: disable=broad-except  # any reader error: zstd, tensorstore, json, shape
        reason = _one_line(e)
        first_error = first_error or (step, reason)
        nxt = f'falling back to step {steps[i + 1]}' if i + 1 < len(steps) else 'no older step to fall back to'
        print(f'checkpoint step {step} in {self.directory} cannot be restored ({reason}); {nxt}.', flush=True)
        if rename_damaged and i + 1 < len(steps):
          self._set_aside(step)
    step, reason = first_error
    raise ValueError(f'no checkpoint in {self.directory} can be restored (step {step}: {reason}); move the '
                     'directory away to start over, or delete the damaged steps.')

  def _set_aside(self, step: int) -> None:
    """Renames step ``step`` to ``<step>.damaged`` (process 0) and reloads the step list on every process."""
    self._manager.wait_until_finished()
    src = self.directory / str(step)
    if jax.process_index() == 0 and src.exists():
      dst, n = self.directory / f'{step}.damaged', 1
      while dst.exists():  # an earlier damaged copy of the same step
        dst, n = self.directory / f'{step}.damaged-{n}', n + 1
      src.rename(dst)
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
      multihost_utils.sync_global_devices(f'checkpoint_set_aside_{step}')
    self._manager.reload()

  def restore_config(self, step: int | None = None) -> dict:
    """The config JSON saved with ``step`` (default latest)."""
    step = self.latest_step() if step is None else step
    restored = self._manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))
    return dict(restored.config or {})

  def reached_preemption(self, step: int) -> bool:
    """True when the cluster announced a preemption (multi-host sync point), see orbax docs."""
    return self._manager.reached_preemption(step)

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()


def _one_line(err: BaseException) -> str:
  text = ' '.join(str(err).split())
  text = f'{type(err).__name__}: {text}' if text else type(err).__name__
  return text if len(text) <= 200 else text[:197] + '...'


def checkpoint_dir(workdir: str) -> str:
  return os.path.join(workdir, 'checkpoints')

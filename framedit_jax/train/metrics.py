"""Metrics: TensorBoard through clu writers, a console progress line with ETA, the NaN guard, MFU."""

from __future__ import annotations

import time

from absl import logging
import jax
import numpy as np
from clu import metric_writers


def create_writer(workdir: str) -> metric_writers.MetricWriter:
  """TensorBoard + logging writer on process 0, logging only elsewhere (clu default writer)."""
  return metric_writers.create_default_writer(workdir, just_logging=jax.process_index() > 0)


class Progress:
  """Writes step metrics every ``config.train.log_every`` steps and guards against non-finite steps.

  Console line: ``step 120/600 | loss 0.1234 | mse ... | 3.21 steps/s | 25.7 clips/s | ETA 2m29s`` (the task's
  ``log_keys``).

  Args:
    num_steps: total steps of the run; start_step: step the run (re)started from.
    config: uses ``train.log_every``, ``train.nan_policy``, ``data.global_batch_size``.
    writer: a clu MetricWriter.
    flops_per_step: model FLOPs of one train step (for MFU), optional; peak_flops: device peak, optional.
  """

  def __init__(self, num_steps: int, start_step: int, config, writer, *,
               flops_per_step: float | None = None, peak_flops: float | None = None,
               log_keys: tuple[str, ...] = ('loss', 'mse', 'vb', 'grad_norm')):
    self.num_steps = num_steps
    self.log_every = max(1, int(config.train.log_every))
    self.nan_policy = config.train.nan_policy
    self.batch = int(config.data.global_batch_size)
    self.writer = writer
    self.flops_per_step = flops_per_step
    self.peak_flops = peak_flops
    self.log_keys = tuple(log_keys)
    self._t0 = time.time()
    self._last_t = self._t0
    self._last_step = start_step
    self._acc: dict[str, list[float]] = {}
    self.history: list[tuple[int, float]] = []  # (step, loss) of every step seen, for reports

  def check_and_log(self, step: int, metrics) -> None:
    """Fetches ``metrics`` of ``step`` (1-based count of completed steps); raises on non-finite with 'halt'."""
    m = {k: float(v) for k, v in jax.device_get(metrics).items()}
    if m.get('finite', 1.0) < 1.0:
      msg = (f'Non-finite loss or gradient at step {step} (loss={m.get("loss")}, grad_norm={m.get("grad_norm")}). '
             'The last checkpoint before it is intact; lower config.optim.lr, check the data, or set '
             "config.train.nan_policy='skip'.")
      if self.nan_policy == 'halt':
        raise FloatingPointError(msg)
      logging.warning('%s Step skipped.', msg)
    self.history.append((step, m.get('loss', float('nan'))))
    for k, v in m.items():
      self._acc.setdefault(k, []).append(v)
    if step % self.log_every and step != self.num_steps:
      return
    now = time.time()
    dt = max(now - self._last_t, 1e-9)
    steps_per_sec = (step - self._last_step) / dt
    self._last_t, self._last_step = now, step
    scalars = {f'train/{k}': float(np.mean(v)) for k, v in self._acc.items()}
    self._acc = {}
    scalars['perf/steps_per_sec'] = steps_per_sec
    scalars['perf/clips_per_sec'] = steps_per_sec * self.batch
    if self.flops_per_step and self.peak_flops:
      scalars['perf/mfu'] = steps_per_sec * self.flops_per_step / (self.peak_flops * jax.device_count())
    self.writer.write_scalars(step, scalars)
    eta = (self.num_steps - step) / max(steps_per_sec, 1e-9)
    shown = ' | '.join(f'{k} {scalars[f"train/{k}"]:.4f}' for k in self.log_keys if f'train/{k}' in scalars)
    print(f'step {step}/{self.num_steps} | {shown}'
          f' | {steps_per_sec:.2f} steps/s | {scalars["perf/clips_per_sec"]:.1f} clips/s'
          f' | ETA {_fmt(eta)}', flush=True)


def _fmt(seconds: float) -> str:
  seconds = int(max(seconds, 0))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f'{h}h{m:02d}m{s:02d}s' if h else f'{m}m{s:02d}s'

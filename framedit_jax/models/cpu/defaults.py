"""What 'auto' means for `model.scan_blocks`, `model.remat_policy` and `model.cpu_kernels`: one table per backend.

| backend        | scan_blocks | remat_policy                        | cpu_kernels |
|----------------|-------------|-------------------------------------|-------------|
| cpu            | False       | 'none'                              | True        |
| gpu, tpu, ...  | True        | 'dots_with_no_batch_dims_saveable'  | False       |

Why, from the committed runs (`benchmarks/results/`, S size, depth 12, B=2, F=16, 16x16 latents, fp32, 2 cores):
  * CPU, blocks and remat: ours / official step, unrolled + 'none' vs scanned + 'dots_with_no_batch_dims_saveable'
    (`vs_official_cpu.jsonl` vs `vs_official_cpu_scanned.jsonl`): LF 0.88 vs 1.22, G 0.60 vs 0.84, H 0.62 vs 0.90 on
    an AMD Zen 4 VM; 1.16 vs 1.34, 0.84 vs 1.06, 0.88 vs 1.09 on an Intel Sapphire Rapids VM. Unrolled blocks
    compile slower (XL/2: 37 s vs 29 s, `compile_time_cpu.jsonl`), which a run repays within a few dozen steps.
  * CPU, remat alone (unrolled, CPU kernels on, `remat_barrier_cpu.jsonl`): 'none' is 12-28% faster than
    'dots_with_no_batch_dims_saveable' on AMD (-2% to +12% on Intel) and its peak RSS is no higher (AMD 3.0-4.3 GB
    vs 4.6-6.0 GB).
  * CPU kernels (`framedit_jax.models.cpu`): x0.30 LF, x0.25 G, x0.30 H step time at that shape, x0.82 at the
    demo's (`remat_barrier_cpu.jsonl`, AMD); on the Intel VM, before `matmul_vjp`, x0.36-0.48.
  * Accelerators: the scanned stack keeps compile time flat in depth and the policy stores only the weight-matmul
    outputs (less memory than 'none'). No accelerator run is committed yet (`benchmarks/gpu.sh`), so these are
    the previous defaults, unchanged.
The model size does not enter: no committed run shows a size at which the CPU choice flips (depth 4 and 12, the
demo's width 128 and XL compile time all favour the CPU row). An explicit value always wins.
"""

from __future__ import annotations

from typing import Any

AUTO = 'auto'

CPU = {'scan_blocks': False, 'remat_policy': 'none', 'cpu_kernels': True}
ACCELERATOR = {'scan_blocks': True, 'remat_policy': 'dots_with_no_batch_dims_saveable', 'cpu_kernels': False}


def auto_settings(backend: str | None = None) -> dict[str, Any]:
  """The table row for `backend` ('cpu', 'gpu', 'tpu', ...; default `jax.default_backend()`)."""
  if backend is None:
    import jax  # pylint: disable=g-import-not-at-top
    backend = jax.default_backend()
  return dict(CPU if backend == 'cpu' else ACCELERATOR)


def _on_off(value: Any) -> Any:
  """cpu_kernels as a config spells it ('on' / 'off') or as a bool; anything else is returned for the error."""
  return {'on': True, 'off': False}.get(value, value) if isinstance(value, str) else value


def resolve(scan_blocks: Any = AUTO, remat_policy: Any = AUTO, cpu_kernels: Any = AUTO,
            backend: str | None = None) -> dict[str, Any]:
  """`get_model` kwargs `scan_blocks` (bool), `remat_policy` (str), `cpu_kernels` (bool) with 'auto' resolved.

  Args:
    scan_blocks: 'auto', True or False.
    remat_policy: 'auto' or a `blocks.REMAT_POLICIES` name (checked by the model).
    cpu_kernels: 'auto', 'on', 'off', True or False.
    backend: as for `auto_settings`.

  Raises:
    ValueError: a value outside those (one line, naming the config field).
  """
  auto = auto_settings(backend)
  out = {}
  for field, value, ok in (('scan_blocks', scan_blocks, (True, False)),
                           ('remat_policy', remat_policy, None),
                           ('cpu_kernels', _on_off(cpu_kernels), (True, False))):
    if value == AUTO:
      value = auto[field]
    elif ok is not None and (not isinstance(value, bool) or value not in ok):
      raise ValueError(f"config.model.{field} must be 'auto' or "
                       f"{'on/off' if field == 'cpu_kernels' else 'True/False'}, got {value!r}.")
    out[field] = value
  return out


def model_settings(model_config: Any, backend: str | None = None) -> dict[str, Any]:
  """`resolve` of a `config.model` (missing fields are 'auto').

  Raises:
    ValueError: the config still has the old `grad_barrier` field (renamed `cpu_kernels`), or a bad value.
  """
  if 'grad_barrier' in model_config:
    raise ValueError('config.model.grad_barrier is now config.model.cpu_kernels (auto/on/off; it switches every '
                     'XLA CPU kernel of framedit_jax.models.cpu); rename the field.')
  get = lambda k: model_config.get(k, AUTO)
  return resolve(get('scan_blocks'), get('remat_policy'), get('cpu_kernels'), backend)

"""Shared pieces of the benchmarks: design names, memory probes, timing, OOM detection, JSON output.

Not a library module: the benchmark scripts import it from their own folder.
"""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from typing import Any, Callable

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
  sys.path.insert(0, REPO_ROOT)

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position

# Short design keys -> registry name templates ({size}, {rank}, {patch}).
DESIGNS = {
    'local': 'Latte-{size}/{patch}',
    'full3d': 'DiT3D-{size}/{patch}',
    'g': 'FrameDiTG-{size}/{rank}/{patch}',
    'h_concat': 'FrameDiTH-{size}/{rank}/{patch}-concat',
    'h_gated': 'FrameDiTH-{size}/{rank}/{patch}-gated',
}
# Latte's design space and VideoDiT's 2D->3D model (framedit_jax/models/latte_design.py, videodit.py), with the
# get_model options that define each (added to the case's overrides).
DESIGNS.update({
    'latte_v2': 'LatteV2-{size}/{patch}',
    'latte_v3': 'LatteV3-{size}/{patch}',
    'latte_v4': 'LatteV4-{size}/{patch}',
    'latte_tubelet': 'LatteV1-{size}/{patch}',
    'latte_tokens': 'LatteV1-{size}/{patch}',
    'latte_rope': 'LatteV1-{size}/{patch}',
    'videodit': 'VideoDiT-{size}/{patch}',
})
DESIGN_OPTIONS = {
    'latte_tubelet': {'patch_embed': 'tubelet', 'tubelet_size': 2},
    'latte_tokens': {'conditioning': 'tokens'},
    'latte_rope': {'temporal_pos': 'rope'},
}
DESIGN_LABELS = {'local': 'Local Factorized (Latte)', 'full3d': 'Full 3D (DiT3D)', 'g': 'FrameDiT-G',
                 'h_concat': 'FrameDiT-H concat', 'h_gated': 'FrameDiT-H gated'}


def model_name(design: str, size: str, rank: str, patch: int) -> str:
  """Registry name of a design key, e.g. ('h_concat', 'XL', '128-512', 2) -> 'FrameDiTH-XL/128-512/2-concat'."""
  if design not in DESIGNS:
    raise ValueError(f'--designs: unknown design {design!r}; choose from {", ".join(DESIGNS)}.')
  return DESIGNS[design].format(size=size, rank=rank, patch=patch)


def parse_list(text: str, cast: Callable = str) -> list:
  return [cast(v) for v in text.split(',') if v.strip()]


def is_oom(err: BaseException) -> bool:
  """True for XLA / allocator out-of-memory errors (RESOURCE_EXHAUSTED, 'Out of memory', MemoryError)."""
  if isinstance(err, MemoryError):
    return True
  msg = str(err)
  return any(s in msg for s in ('RESOURCE_EXHAUSTED', 'Out of memory', 'out of memory', 'OOM'))


def _status_kib(field: str) -> int | None:
  try:
    with open('/proc/self/status') as f:
      for line in f:
        if line.startswith(field + ':'):
          return int(line.split()[1])
  except OSError:
    pass
  return None


def reset_peak_rss() -> bool:
  """Resets the process's RSS high-water mark (Linux `clear_refs` 5). Returns False where unsupported."""
  try:
    with open('/proc/self/clear_refs', 'w') as f:
      f.write('5')
    return True
  except OSError:
    return False


def rss_bytes() -> int:
  kib = _status_kib('VmRSS')
  return 0 if kib is None else kib * 1024


def peak_rss_bytes() -> int:
  """VmHWM (since the last `reset_peak_rss`) or, failing that, ru_maxrss (process lifetime)."""
  kib = _status_kib('VmHWM')
  if kib is None:
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  return kib * 1024


def device_memory_stats() -> dict[str, int] | None:
  """`memory_stats()` of device 0 (GPU/TPU), None on CPU."""
  dev = jax.devices()[0]
  if dev.platform == 'cpu':
    return None
  try:
    return dev.memory_stats()
  except Exception:  # pylint: disable=broad-except
    return None


class PeakMemory:
  """Peak memory while a block runs: device `peak_bytes_in_use` on accelerators, process RSS on CPU.

  `peak_bytes`: absolute peak (GPU: process-lifetime peak as the allocator reports it; CPU: VmHWM since the
  block started). `delta_bytes`: peak minus what was in use when the block started (the case's own activations
  and temporaries when several cases are alive at once).
  """

  def __enter__(self):
    stats = device_memory_stats()
    if stats is not None:
      self.kind = 'device'
      self.start = int(stats.get('bytes_in_use', 0))
    else:
      self.kind = 'rss'
      reset_peak_rss()
      self.start = rss_bytes()
    return self

  def __exit__(self, *exc):
    if self.kind == 'device':
      stats = device_memory_stats() or {}
      self.peak_bytes = int(stats.get('peak_bytes_in_use', 0))
    else:
      self.peak_bytes = peak_rss_bytes()
    self.delta_bytes = max(0, self.peak_bytes - self.start)


def time_calls(fn: Callable[[], Any], n: int) -> list[float]:
  """Wall seconds of `n` calls of `fn` (each blocked until its result is ready)."""
  out = []
  for _ in range(n):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    out.append(time.perf_counter() - t0)
  return out


def median(xs: list[float]) -> float:
  return float(statistics.median(xs)) if xs else float('nan')


def git_commit(dirty: bool = False) -> str:
  """Short HEAD hash ('unknown' outside git); with `dirty`, '-dirty' is appended when tracked files changed."""
  try:
    commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=REPO_ROOT, capture_output=True, text=True,
                            check=True).stdout.strip()
    if dirty and subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'], cwd=REPO_ROOT,
                                capture_output=True, text=True, check=True).stdout.strip():
      commit += '-dirty'
    return commit
  except (OSError, subprocess.CalledProcessError):
    return 'unknown'


def cpu_model() -> str:
  """The host CPU as '/proc/cpuinfo' names it, with family/model (e.g. 'AMD EPYC (family 26 model 2, avx512)').

  CPU speed ratios depend on the microarchitecture (XLA and oneDNN pick different kernels), so every benchmark
  header records it. Falls back to `platform.processor()` where /proc/cpuinfo is absent.
  """
  try:
    with open('/proc/cpuinfo') as f:
      text = f.read()
  except OSError:
    return platform.processor() or 'unknown'
  field = lambda key: (re.search(rf'^{key}\s*:\s*(.*)$', text, re.M) or [None, '?'])[1].strip()
  flags = field('flags').split()
  isa = 'avx512' if 'avx512f' in flags else 'avx2' if 'avx2' in flags else 'no-avx2'
  return f"{field('model name')} (family {field('cpu family')} model {field('model')}, {isa})"


def machine_info() -> dict[str, Any]:
  dev = jax.devices()[0]
  return {'platform': dev.platform, 'device_kind': dev.device_kind, 'num_devices': jax.device_count(),
          'cpu_count': os.cpu_count(), 'cpu_model': cpu_model(), 'host': platform.node(), 'jax': jax.__version__,
          'date': time.strftime('%Y-%m-%d %H:%M:%S %Z'), 'commit': git_commit()}


def emit(record: dict[str, Any], out_path: str | None) -> None:
  """Prints one JSON line and appends it to `out_path` (if given)."""
  line = json.dumps(record, sort_keys=False)
  print(line, flush=True)
  if out_path:
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, 'a') as f:
      f.write(line + '\n')

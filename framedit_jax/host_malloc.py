"""glibc malloc settings for a JAX CPU process: freed XLA buffers are reused, not unmapped and faulted in again.

Why: XLA on CPU allocates the temporaries of every step with the process allocator, from its worker threads. Under
glibc those threads get their own arenas, whose heaps are at most 64 MiB, so every larger buffer (XLA's temp
buffer of a Latte-S/2 step is ~1.2 GB) is a fresh `mmap` and its free a `munmap`: the next step faults the same
pages in again, ~300k minor page faults per step on the Intel VM, 0 under tcmalloc (`benchmarks/README.md`). A
user who does not preload tcmalloc gets that. With one arena (`M_ARENA_MAX=1`, all threads allocate from the
`brk` heap, which can grow past 64 MiB), no mmap (`M_MMAP_MAX=0`) and trimming only above 2 GiB of free heap top
(`M_TRIM_THRESHOLD`), freed blocks stay in the heap and the next step reuses them: 0 faults per step, and the
process's peak RSS stays what the steps need ('peak_rss_mb' and the per-step page faults in
`benchmarks/results/vs_official_cpu.jsonl`). These are the
settings `MALLOC_ARENA_MAX=1 MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=...` give at start-up, set here with
`mallopt(3)` so that no environment variable or restart is needed.

When: once, as `framedit_jax` is imported, so that it precedes the first allocation of XLA's threads (a thread
keeps the arena of its first malloc). Only for a CPU process: `JAX_PLATFORMS` unset or starting with 'cpu' and no
TPU / CUDA / ROCm plugin installed (or `JAX_PLATFORMS=cpu` explicitly). Not when another allocator is preloaded
(`LD_PRELOAD` naming tcmalloc / jemalloc / mimalloc), off glibc, or with `FRAMEDIT_GLIBC_MALLOC=default`.
`FRAMEDIT_GLIBC_MALLOC=tune` applies it whatever the platform.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
import os

M_TRIM_THRESHOLD, M_MMAP_MAX, M_ARENA_MAX = -1, -4, -8  # <malloc.h>
SETTINGS = ((M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, 2**31 - 1))  # mallopt takes an int
ENV = 'FRAMEDIT_GLIBC_MALLOC'
OTHER_ALLOCATORS = ('tcmalloc', 'jemalloc', 'mimalloc')
ACCELERATOR_PLUGINS = ('libtpu', 'jax_cuda12_plugin', 'jax_cuda13_plugin', 'jax_rocm60_plugin', 'jax_rocm7_plugin')

_state: dict[str, str] = {}


def status() -> str:
  """'tuned', 'preloaded:<lib>', 'off (...)', 'accelerator (...)', 'not glibc', 'failed', or 'untouched'."""
  return _state.get('status', 'untouched')


def _cpu_process() -> str | None:
  """None when this looks like a CPU-only JAX process, else the reason it does not."""
  platforms = os.environ.get('JAX_PLATFORMS', '')
  if platforms:
    return None if platforms.split(',')[0].strip() == 'cpu' else f'JAX_PLATFORMS={platforms}'
  found = [p for p in ACCELERATOR_PLUGINS if importlib.util.find_spec(p) is not None]
  return f'{found[0]} installed' if found else None


def tune_glibc_malloc() -> str:
  """Applies the settings above once per process (the first call decides); returns `status()`. Never raises."""
  if 'status' in _state:
    return _state['status']
  preload = os.environ.get('LD_PRELOAD', '')
  other = next((a for a in OTHER_ALLOCATORS if a in preload), None)
  mode = os.environ.get(ENV, '')
  not_cpu = None if mode == 'tune' else _cpu_process()
  if other:
    _state['status'] = f'preloaded:{other}'
  elif mode == 'default':
    _state['status'] = f'off ({ENV}=default)'
  elif not_cpu:
    _state['status'] = f'accelerator ({not_cpu})'
  else:
    _state['status'] = _mallopt()
  return _state['status']


def _mallopt() -> str:
  try:
    libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
  except OSError:
    return 'not glibc'
  if not hasattr(libc, 'mallopt') or not hasattr(libc, 'gnu_get_libc_version'):
    return 'not glibc'
  ok = [libc.mallopt(param, value) == 1 for param, value in SETTINGS]
  return 'tuned' if all(ok) else 'failed'

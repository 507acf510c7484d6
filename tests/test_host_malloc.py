"""The CPU process's glibc malloc setting (`framedit_jax/host_malloc.py`), checked through glibc's own accounting:
`mallinfo2().hblkhd` counts the bytes held in mmapped blocks. Each case runs in a fresh interpreter, since the
setting is applied once, at `import framedit_jax`."""

import json
import os
import subprocess
import sys

import pytest

_PROBE = r'''
import ctypes, json, threading
import framedit_jax
from framedit_jax import host_malloc
class Info(ctypes.Structure):  # struct mallinfo2 (glibc >= 2.33)
  _fields_ = [(n, ctypes.c_size_t) for n in ('arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks',
                                             'fsmblks', 'uordblks', 'fordblks', 'keepcost')]
libc = ctypes.CDLL('libc.so.6')
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
out = {'status': host_malloc.status()}
def worker():  # as an XLA worker thread: its first malloc picks its arena
  before = libc.mallinfo2().hblkhd
  block = libc.malloc(96 << 20)  # 96 MiB: above the mmap threshold and a thread arena's 64 MiB heap
  out['mapped'] = libc.mallinfo2().hblkhd - before
  libc.free(block)
t = threading.Thread(target=worker)
t.start(); t.join()
print(json.dumps(out))
'''


@pytest.mark.parametrize('env,status,mmapped', [
    ({'JAX_PLATFORMS': 'cpu'}, 'tuned', False),
    ({'JAX_PLATFORMS': 'cpu', 'FRAMEDIT_GLIBC_MALLOC': 'default'}, 'off (FRAMEDIT_GLIBC_MALLOC=default)', True),
    ({'JAX_PLATFORMS': 'tpu'}, 'accelerator (JAX_PLATFORMS=tpu)', True),
    ({'JAX_PLATFORMS': 'tpu', 'FRAMEDIT_GLIBC_MALLOC': 'tune'}, 'tuned', False),
])
def test_a_cpu_process_allocates_large_thread_buffers_from_the_heap(env, status, mmapped):
  """Tuned: a worker thread's 96 MiB block comes from the one brk heap (no mmap, so a step that frees and
  reallocates it faults no pages in); opted out, or on an accelerator, glibc maps it as usual."""
  environ = {k: v for k, v in os.environ.items() if k not in ('FRAMEDIT_GLIBC_MALLOC', 'LD_PRELOAD')}
  environ.update(env)
  proc = subprocess.run([sys.executable, '-c', _PROBE], env=environ, capture_output=True, text=True, check=True)
  probe = json.loads(proc.stdout.strip().splitlines()[-1])
  assert probe['status'] == status
  assert (probe['mapped'] >= 96 << 20) == mmapped, probe

"""Test-session set-up: one persistent XLA compilation cache shared by every test, worker and subprocess.

Many tests compile the same train step more than once (a reference run and its resumed twin, the two processes
of the multi-host test, CLI subprocesses). JAX's persistent cache (keyed by the HLO, the flags and the jax
version) turns the repeats into cache loads; the compiled executables, and so every number, are the same.
Set JAX_COMPILATION_CACHE_DIR yourself to choose the folder, or to '' to switch the cache off.
"""

import getpass
import os
import tempfile

if 'JAX_COMPILATION_CACHE_DIR' not in os.environ:
  os.environ['JAX_COMPILATION_CACHE_DIR'] = os.path.join(tempfile.gettempdir(),
                                                         f'framedit_jax_test_xla_cache_{getpass.getuser()}')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0.5')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '0')
# The `test` extra installs libtpu (tests/test_aot.py compiles for compile-only TPU devices); keep every test on the
# CPU backend rather than letting JAX probe for TPU chips in each worker.
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
# The tests' programs are tiny, so LLVM's optimisation passes cost more than they save: turn them down for every
# test, worker and subprocess (tests/_train_utils.env keeps these flags). Both sides of every comparison are
# compiled with the same flags; speed is measured in benchmarks/, never here.
FAST_COMPILE_FLAGS = '--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true'
if 'xla_backend_optimization_level' not in os.environ.get('XLA_FLAGS', ''):
  os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') + ' ' + FAST_COMPILE_FLAGS).strip()

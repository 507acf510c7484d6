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


# Modules holding the suite's longest tests (multi-process, 8-device and full training-loop runs) run first, so the
# two xdist workers do not end on them one at a time; each module keeps its own order, so its module-scoped fixtures
# are built once.
SLOW_MODULES_FIRST = ('test_train_tasks', 'test_vae_latent_cache', 'test_train_multihost', 'test_parallel_sharding',
                      'test_parallel_context', 'test_train_dpvae', 'test_train_t2v_demo', 'test_launch_eval_vae',
                      'test_aot', 'test_train_resume', 'test_launch_cli', 'test_parallel_frame')


def pytest_collection_modifyitems(config, items):
  del config
  rank = {name: i for i, name in enumerate(SLOW_MODULES_FIRST)}
  items.sort(key=lambda item: rank.get(item.module.__name__.rsplit('.', 1)[-1], len(rank)))

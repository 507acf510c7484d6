"""Runs tests/_parallel_script.py once per test session on 8 host CPU devices and returns its JSON results.

The pytest process may already have initialised jax with one device, so the multi-device cases run in a
subprocess with XLA_FLAGS=--xla_force_host_platform_device_count=8. Shared by test_parallel_frame.py and
test_parallel_sharding.py (one subprocess for both files, and for both xdist workers). LLVM optimisation is turned
down: it only changes how fast the tiny programs run, and both sides of every comparison are compiled with the same
flags.
"""

import fcntl
import functools
import json
import os
import subprocess
import sys
import tempfile

import _train_utils

REPO = _train_utils.REPO


def _run() -> dict:
  env = _train_utils.env(num_devices=8)  # keeps conftest's fast-compile flags
  with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, 'results.json')
    proc = subprocess.run([sys.executable, os.path.join(REPO, 'tests', '_parallel_script.py'), out], env=env,
                          capture_output=True, text=True, timeout=900, cwd=REPO)
    if proc.returncode:
      raise AssertionError(f'tests/_parallel_script.py failed ({proc.returncode}):\n{proc.stderr[-6000:]}')
    with open(out) as f:
      return json.load(f)


@functools.lru_cache(maxsize=None)
def results() -> dict:
  """The script's results, computed once per test session: the pytest-xdist workers of one run (same
  PYTEST_XDIST_TESTRUNUID) share one file under a lock, so the two modules that read it do not each pay for it."""
  run_id = os.environ.get('PYTEST_XDIST_TESTRUNUID')
  if not run_id:
    return _run()
  path = os.path.join(tempfile.gettempdir(), f'framedit_jax_parallel_results_{run_id}.json')
  with open(path + '.lock', 'w') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)  # the second worker waits here for the first one's file
    if not os.path.exists(path):
      got = _run()
      with open(path + '.tmp', 'w') as f:
        json.dump(got, f)
      os.replace(path + '.tmp', path)
    with open(path) as f:
      return json.load(f)

"""Under data x fsdp only weights move: the block activations keep their batch sharding (parallel/activations.py).

Runs tests/_activation_sharding_script.py in a subprocess with 4 simulated CPU devices (fsdp=4): the loss gradient
of a small FrameDiT-H with the accelerator defaults (scanned blocks, dots remat), compiled at global batch 8 and 16.
The SPMD partitioner is XLA's own, as on TPU. Without `constrain_batch` in the blocks this layout drifts: the
all-gather bytes double with the batch (activations gathered, 7.7 -> 15.4 MB) and 76 collective-permutes and 28
all-to-alls reshard activations (the v5p-8 AOT compile of H-XL/2 showed the same at scale, docs/scaling.md (b)).
"""

import json
import os
import sys

import pytest

import _train_utils as tu


@pytest.fixture(scope='module')
def results(tmp_path_factory):
  out = tmp_path_factory.mktemp('as') / 'as.json'
  proc = tu.run([sys.executable, os.path.join(tu.REPO, 'tests', '_activation_sharding_script.py'), str(out)],
                num_devices=4, timeout=1200)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return json.loads(out.read_text())['framedit_h']


def test_only_weights_are_gathered(results):
  small, large = results['8']['collectives'], results['16']['collectives']
  # Weight all-gathers do not depend on the batch; activation gathers would double with it.
  assert small['all-gather']['count'] > 0
  assert large['all-gather']['bytes'] <= 1.05 * small['all-gather']['bytes'], (small, large)
  # Weights are gathered about once per pass (forward, and the remat recompute), not per activation.
  assert small['all-gather']['bytes'] <= 3 * results['param_bytes'], small
  # No activation resharding: no collective-permutes, and what all-to-all is left (the (B, 6D) adaLN conditioning
  # of a few blocks) is tiny next to the weights.
  assert large['collective-permute']['count'] == 0, large
  assert large['all-to-all']['bytes'] <= 0.02 * large['all-gather']['bytes'], large
  # The gradient is all-reduced once (CPU has no reduce-scatter), not piecewise per activation.
  assert large['all-reduce']['bytes'] == small['all-reduce']['bytes'], (small, large)


def test_values_unchanged(results):
  r = results['8']
  assert r['grad_sharded'] and r['grad_ref'] > 0.1
  assert r['grad_diff'] <= 1e-5 * r['grad_ref'], r

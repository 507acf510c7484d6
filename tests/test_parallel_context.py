"""Context-parallel attention (parallel/context_parallel.py) equals single-device attention, values and gradients.

Runs tests/_context_parallel_script.py in a subprocess with 8 simulated CPU devices: the ring (ppermute + online
softmax, custom backward ring) and Ulysses (all-to-all over heads) kernels against `dot_product_attention`, and
frame-parallel DiT3D (Full 3D), FrameDiT-G (Matrix Attention), FrameDiT-H (matrix + local temporal) and Latte
(temporal blocks) against the unsharded model, parameter gradients included. Also checks each mode lowers to its
own collective and never to the K/V all-gather.
"""

import json
import os
import sys

import pytest

import _train_utils as tu


@pytest.fixture(scope='module')
def results(tmp_path_factory):
  out = tmp_path_factory.mktemp('cp') / 'cp.json'
  proc = tu.run([sys.executable, os.path.join(tu.REPO, 'tests', '_context_parallel_script.py'), str(out)],
                num_devices=8, timeout=3000)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return json.loads(out.read_text())


CASES = ['kernel_ring', 'kernel_ulysses', 'dit3d_ring', 'dit3d_ulysses', 'framedit_g_ring', 'framedit_h_ulysses',
         'latte_ring']


@pytest.mark.parametrize('case', CASES)
def test_equals_single_device(results, case):
  r = results[case]
  assert r['ref'] > 0.1 and r['ref_grad'] > 0.1  # the references are not trivially zero
  assert r['value'] <= 1e-5 * r['ref'], r
  assert r['grad'] <= 1e-5 * r['ref_grad'], r


def test_collectives(results):
  # DiT3D, depth 2: one collective per K/V per block in the forward.
  assert results['hlo_ring']['all_gather'] == 0 and results['hlo_ring']['collective_permute'] >= 4
  assert results['hlo_ulysses']['all_gather'] == 0 and results['hlo_ulysses']['all_to_all'] >= 8
  assert results['hlo_gather']['all_gather'] >= 4

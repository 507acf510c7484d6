"""Frame parallelism (jax.shard_map over 'frame') equals the unsharded computation.

References: the unsharded pure functions of framedit_jax.models.attention and the plain model forward on one
device; communication volume against the closed forms of framedit_jax.parallel.frame_parallel. The 8-device
cases run in one subprocess (tests/_parallel_results.py).
"""

import jax.numpy as jnp
import numpy as np
import pytest

from framedit_jax.parallel import collectives
from framedit_jax.parallel.frame_parallel import communication_bytes
import _parallel_results

TOL = 1e-5


@pytest.fixture(scope='module')
def results():
  return _parallel_results.results()


@pytest.mark.parametrize('name', ['local', 'full3d', 'matrix_out', 'matrix_weights'])
def test_collective_attention_functions_match_unsharded(results, name):
  # (1, 1, 8) mesh, T = 8: every device holds one frame.
  r = results['functions'][name]
  assert r['max_abs'] > 0.1  # a non-trivial output
  assert r['max_diff'] < TOL, r


@pytest.mark.parametrize('design', ['latte', 'dit3d', 'framedit_g', 'framedit_h_concat', 'framedit_h_gated'])
def test_frame_parallel_forward_matches_plain_forward(results, design):
  r = results['forward_frame8'][design]
  assert r['max_abs'] > 0.5  # random (not adaLN-Zero) parameters: the output is not identically 0
  assert r['max_diff'] < TOL, r


@pytest.mark.parametrize('design,temporal,blocks', [
    ('latte', 'local', 1), ('dit3d', 'full3d', 2), ('framedit_g', 'matrix', 1), ('framedit_h_concat', 'hybrid', 1),
    ('framedit_h_gated', 'hybrid', 1)])
def test_communication_matches_closed_form(results, design, temporal, blocks):
  # b = 8 per device, T = 8, N = 16, D = 64, f = 8, r_qk = 8, r_v = 16, float32; depth 2.
  want = blocks * communication_bytes(temporal, batch=8, frames=8, tokens=16, hidden=64, shards=8, qk_col_dim=8,
                                      v_col_dim=16)
  got = results['communication'][design]
  assert got['all_gather'] + got['all_to_all'] == pytest.approx(want, rel=1e-9)
  # Matrix / Full 3D gather K and V; Local Factorized uses all-to-all only.
  assert (got['all_to_all'] > 0) == (temporal in ('local', 'hybrid'))
  assert (got['all_gather'] > 0) == (temporal in ('matrix', 'full3d', 'hybrid'))


def test_shapes_frame_parallelism_cannot_split_are_one_line_errors(results):
  errors = results['errors']
  assert errors['tokens'] is not None and 'N=9' in errors['tokens'] and 'mesh.frame=8' in errors['tokens']
  assert errors['frames'] is not None and 'T=4' in errors['frames'] and 'mesh.frame=8' in errors['frames']
  assert all('\n' not in e for e in errors.values())


def test_collectives_are_identity_outside_shard_map():
  # The same model code runs unsharded (init, sampling, one device): nothing binds 'frame' here.
  x = jnp.arange(2 * 4 * 6 * 3, dtype=jnp.float32).reshape(2, 4, 6, 3)
  assert collectives.frame_axis_size('frame') == 1 and collectives.frame_axis_size(None) == 1
  assert collectives.frame_offset('frame', 4) == 0
  for fn in (collectives.gather_frames, collectives.frames_to_tokens, collectives.tokens_to_frames):
    np.testing.assert_array_equal(np.asarray(fn(x, 'frame')), np.asarray(x))

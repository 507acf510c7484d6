"""Smoke test of benchmarks/vs_official.py (ours vs the official PyTorch train step).

The official code is never in this repo: the end-to-end test runs only where FRAMEDIT_OFFICIAL_SRC points at an
unpacked FrameDiT checkout (e.g. /work/ref/FrameDiT); it checks that both sides run the same model (forward
outputs agree on the copied weights) and that the record's numbers are consistent. The config tests need no
official code.
"""

import importlib.util
import json
import os
import sys

import jax.numpy as jnp
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OFFICIAL_SRC = os.environ.get('FRAMEDIT_OFFICIAL_SRC', '')


def _load(name):
  spec = importlib.util.spec_from_file_location(f'bench_{name}', os.path.join(ROOT, 'benchmarks', f'{name}.py'))
  mod = importlib.util.module_from_spec(spec)
  sys.modules[spec.name] = mod
  spec.loader.exec_module(mod)
  return mod


vs = _load('vs_official')
TINY_OVERRIDES = ['hidden_size=32', 'num_heads=2', 'qk_col_dim=8', 'v_col_dim=32', 'num_col_heads=4']


def test_override_routing_and_clip_from_step_zero():
  from framedit_jax.train.optimizer import scheduled_clip_by_global_norm
  assert vs.parse_override('scan_blocks=True') == ('scan_blocks', True)
  assert vs.parse_override('remat_policy=dots') == ('remat_policy', 'dots')
  with pytest.raises(ValueError, match='key=value'):
    vs.parse_override('scan_blocks')
  ov = [vs.parse_override(o) for o in ['remat=True', 'scan_blocks=True', 'qk_col_dim=8', 'fuse_mode=gated']]
  local = vs.ours_config('local', 4, 8, 2, 2, ov)
  assert local.model.name == 'Latte-S/2' and local.model.remat is True and local.model.dtype == 'float32'
  assert local.model.scan_blocks is True  # a config.model field: set there, not in overrides
  assert dict(local.model.overrides) == {'depth': 2}  # Matrix/fusion keys dropped for Latte
  assert local.model.num_classes == 0 and local.vae.name == 'identity' and local.data.global_batch_size == 2
  h = vs.ours_config('h_gated', 4, 8, 2, 2, ov)
  assert h.model.name == 'FrameDiTH-S/64-256/2-gated'
  assert h.model.scan_blocks is True
  assert dict(h.model.overrides) == {'depth': 2, 'qk_col_dim': 8, 'fuse_mode': 'gated'}
  # The config clips from the first update (official start_clip_iter=20000 would leave step 0 unclipped).
  clip = scheduled_clip_by_global_norm(h.optim.clip_max_norm, h.optim.start_clip_iter)
  g = {'w': jnp.full((4,), 5.0)}  # global norm 10
  out, _ = clip.update(g, clip.init(g))
  np.testing.assert_allclose(float(jnp.linalg.norm(out['w'])), h.optim.clip_max_norm, rtol=1e-4)


@pytest.mark.skipif(not os.path.isdir(os.path.join(OFFICIAL_SRC, 'models')),
                    reason='needs the official FrameDiT code: set FRAMEDIT_OFFICIAL_SRC to its checkout root '
                           '(not part of this repo)')
def test_tiny_end_to_end_same_model(tmp_path):
  out = tmp_path / 'r.jsonl'
  argv = ['--official-src', OFFICIAL_SRC, '--designs', 'local,g', '--frames', '4', '--depth', '2', '--batch', '2',
          '--latent', '8', '--threads', '2', '--rounds', '1', '--out', str(out)]
  for o in TINY_OVERRIDES:
    argv += ['--ours-override', o]
  records = vs.main(argv, pin_threads=False)
  lines = [json.loads(x) for x in out.read_text().splitlines()]
  assert lines[0]['header'] and 'torch' in lines[0] and 'jax' in lines[0] and lines[1:] == records
  assert [r['design'] for r in records] == ['local', 'g']
  for r in records:
    # Same weights in both frameworks -> same forward (fp32); outputs are O(1), so this is a real comparison.
    assert r['fwd_max_abs'] > 0.5 and r['fwd_max_abs_diff'] < 1e-4, r
    assert r['depth'] == 2 and r['hidden_size'] == 32
    assert r['ratio'] == pytest.approx(r['ours_step_s'] / r['official_step_s'], rel=1e-3)
    assert len(r['ours_losses']) == len(r['official_losses']) == 2
    # Hybrid loss at init on unit-variance latents: MSE ~ 1 plus a positive VB term, on both sides.
    assert all(0.5 < x < 20 for x in r['ours_losses'] + r['official_losses']), r

"""Smoke test of benchmarks/step_time.py: one very small case of the --tiny preset, plus the OOM and dry-run paths.

Performance targets are not asserted; the numbers checked are internal identities (train FLOPs = 3 x forward,
MFU = FLOPs / time / peak) and the analytic count against XLA's.
"""

import importlib.util
import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load(name):
  spec = importlib.util.spec_from_file_location(f'bench_{name}', os.path.join(ROOT, 'benchmarks', f'{name}.py'))
  mod = importlib.util.module_from_spec(spec)
  sys.modules[spec.name] = mod
  spec.loader.exec_module(mod)
  return mod


step_time = _load('step_time')
SMALL = ['--tiny', '--sizes', '4', '--frames', '4', '--depth', '2', '--hidden-size', '32', '--num-heads', '2',
         '--rounds', '1', '--steps', '2', '--warmup', '1']


def test_tiny_case_fields_positive(tmp_path, capsys):
  out = tmp_path / 'r.jsonl'
  records = step_time.main(SMALL + ['--designs', 'local', '--out', str(out)])
  assert len(records) == 1
  r = records[0]
  assert r['oom'] is False and r['model'] == 'Latte-S/2'
  for k in ('compile_s', 'step_ms', 'fwd_ms', 'peak_bytes', 'flops_step', 'flops_step_xla', 'flops_fwd_xla',
            'mfu', 'params', 'xla_temp_bytes', 'achieved_tflops'):
    assert r[k] is not None and r[k] > 0, k
  assert r['n_timed'] == 2 and r['memory_kind'] in ('rss', 'device')
  assert r['flops_step'] == 3 * r['flops_fwd']
  assert r['mfu'] == pytest.approx(r['flops_step'] / (r['step_ms'] * 1e-3) / (r['peak_tflops'] * 1e12), rel=1e-3)
  # XLA also counts loss, optimizer and elementwise work, a large share at width 32 (the tight analytic-vs-XLA
  # check is tests/test_benchmarks_flops.py): above the matmul model, within 2.5x.
  assert 1.0 < r['flops_step_xla'] / r['flops_step'] < 2.5
  lines = [json.loads(l) for l in out.read_text().splitlines()]
  assert lines[0]['header'] and lines[1]['step_ms'] == r['step_ms']
  assert '# ratios vs Local Factorized' in capsys.readouterr().out


def test_oom_is_recorded_not_raised(monkeypatch, capsys):
  class Boom(step_time.Built):
    def __init__(self, args, case):  # pylint: disable=super-init-not-called
      raise RuntimeError('RESOURCE_EXHAUSTED: Out of memory while trying to allocate 99.00GiB.')

  monkeypatch.setattr(step_time, 'Built', Boom)
  records = step_time.main(SMALL + ['--designs', 'local,full3d', '--no-interleave'])
  assert [r['oom'] for r in records] == [True, True]
  assert records[1]['error'].startswith('RESOURCE_EXHAUSTED')
  assert 'first OOM: full3d at latent 4x4, T=4' in capsys.readouterr().out


def test_h100_dry_run_lists_xl_cases():
  records = step_time.main(['--h100', '--dry-run', '--designs', 'local,h_concat', '--frames', '16,128'])
  assert len(records) == 2 * 2 * 2  # sizes 16, 32 x frames x designs
  first = records[0]
  assert first['model'] == 'Latte-XL/2' and first['dtype'] == 'bfloat16' and first['hidden_size'] == 1152
  h = next(r for r in records if r['design'] == 'h_concat' and r['latent_size'] == 16 and r['num_frames'] == 128)
  assert h['model'] == 'FrameDiTH-XL/128-512/2-concat' and h['tokens_per_frame'] == 64
  # Local + Matrix scores: B (N h + C R) T^2 = 4 * (64*16 + 64*16) * 128^2.
  assert h['temporal_score_elements'] == 4 * (64 * 16 + 64 * 16) * 128**2

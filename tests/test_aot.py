"""benchmarks/aot.py: the demo train step compiled for a TPU v5e 2x2 slice (libtpu, compile-only devices).

The experiment layer's own jitted step with fsdp=4 must hold about a quarter of the parameters per chip and
communicate through the FSDP pair: parameter all-gathers and a gradient reduce-scatter in the optimized HLO.
With fsdp=1 (data parallel) both would fail: every chip holds all parameters and gradients are all-reduced.
The HLO parser (benchmarks/aot_hlo.py) is checked on a hand-written module with a scan (trip count) and TPU's
reduce-scatter fusion.
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'benchmarks'))

import aot_hlo  # pylint: disable=g-import-not-at-top,wrong-import-position

HLO = """HloModule jit_step, entry_computation_layout={(f32[8])->f32[8]}

%add (a: f32[], b: f32[]) -> f32[] {
  %a = f32[] parameter(0)
  %b = f32[] parameter(1)
  ROOT %s = f32[] add(%a, %b)
}

%all-reduce-scatter.1 (p: f32[64]) -> f32[16] {
  %p = f32[64]{0} parameter(0)
  %ar = f32[64]{0} all-reduce(%p), replica_groups={{0,1,2,3}}, to_apply=%add
  ROOT %sl = f32[16]{0} slice(%ar), slice={[0:16]}
}

%body (t: (s32[], bf16[4,8])) -> (s32[], bf16[4,8]) {
  %t = (s32[], bf16[4,8]{1,0}) parameter(0)
  %i = s32[] get-tuple-element(%t), index=0
  %x = bf16[4,8]{1,0} get-tuple-element(%t), index=1
  %ag = bf16[16,8]{1,0} all-gather(%x), dimensions={0}
  %cp-start = (bf16[4,8]{1,0}, bf16[4,8]{1,0}, u32[], u32[]) collective-permute-start(%x), source_target_pairs={{0,1}}
  %cp = bf16[4,8]{1,0} collective-permute-done(%cp-start)
  ROOT %r = (s32[], bf16[4,8]{1,0}) tuple(%i, %cp)
}

%cond (t: (s32[], bf16[4,8])) -> pred[] {
  %t = (s32[], bf16[4,8]{1,0}) parameter(0)
  %c = s32[] constant(7)
  %i = s32[] get-tuple-element(%t), index=0
  ROOT %lt = pred[] compare(%i, %c), direction=LT
}

ENTRY %main (x: f32[64], y: (s32[], bf16[4,8])) -> f32[16] {
  %x = f32[64]{0} parameter(0)
  %y = (s32[], bf16[4,8]{1,0}) parameter(1)
  %w = (s32[], bf16[4,8]{1,0}) while(%y), condition=%cond, body=%body
  %w2 = (s32[], bf16[4,8]{1,0}) while(%y), condition=%cond, body=%body, backend_config={"known_trip_count":{"n":"3"}}
  %ars = f32[16]{0} fusion(%x), kind=kCustom, calls=%all-reduce-scatter.1
  %a2a = (f32[8]{0}, f32[8]{0}) all-to-all(%x, %x), dimensions={0}
  ROOT %o = f32[16]{0} add(%ars, %ars)
}
"""


def test_collective_stats_hand_written():
  s = aot_hlo.collective_stats(HLO)
  assert s['all-gather'] == {'count': 10, 'bytes': 10 * 16 * 8 * 2, 'static': 1, 'in_loop': 1}  # 7 + 3 iterations
  assert s['collective-permute'] == {'count': 10, 'bytes': 10 * 4 * 8 * 2, 'static': 1, 'in_loop': 1}
  assert s['reduce-scatter'] == {'count': 1, 'bytes': 16 * 4, 'static': 1, 'in_loop': 0}
  assert s['all-reduce']['count'] == 0  # the fused one is the reduce-scatter
  assert s['all-to-all'] == {'count': 1, 'bytes': 2 * 8 * 4, 'static': 1, 'in_loop': 0}
  assert s['unknown_trip'] == 0


def _compile_demo(tmp_path, fsdp: int, *extra: str) -> dict:
  out = tmp_path / f'aot_fsdp{fsdp}.jsonl'
  cmd = [sys.executable, os.path.join(ROOT, 'benchmarks', 'aot.py'), '--config=' + os.path.join(ROOT, 'configs',
         'demo.py'), '--target=tpu:v5e:2x2', f'--config.mesh.fsdp={fsdp}', f'--config.mesh.data={4 // fsdp}',
         # unrolled, as in the committed aot_ci_demo.jsonl rows: with scanned blocks (the accelerator 'auto' row)
         # the per-layer gradient reduce-scatters run inside the scan and carry more bytes (see docs/scaling.md)
         '--config.model.scan_blocks=False', '--compile=train', f'--out={out}'] + list(extra)
  # XLA_FLAGS='': the TPU compiler runs with its own defaults (not conftest's fast-compile CPU flags)
  env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=ROOT, ALLOW_MULTIPLE_LIBTPU_LOAD='1', XLA_FLAGS='')
  proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200)
  assert proc.returncode == 0, proc.stderr[-3000:]
  (rec,) = [json.loads(l) for l in out.read_text().splitlines()]
  return rec


@pytest.fixture(scope='module')
def fsdp4(tmp_path_factory):
  # With the optimizer state and EMA in host memory (config.train.host_offload); the FSDP collectives are unchanged.
  return _compile_demo(tmp_path_factory.mktemp('aot'), 4, '--config.train.host_offload=True')


def test_demo_step_fsdp4_on_v5e(fsdp4):
  rec = fsdp4
  assert rec['status'] == 'fits' and rec['device_kind'] == 'TPU v5 lite' and rec['num_devices'] == 4
  assert rec['mesh'] == {'data': 1, 'fsdp': 4, 'frame': 1}
  # Arrays under 2**14 elements stay replicated (mesh.fsdp_spec), so a little over a quarter.
  ratio = rec['param_bytes_per_device'] / rec['param_bytes_total']
  assert 0.25 <= ratio <= 0.3, ratio
  # The compiler's own per-chip arguments: in device memory the sharded params (+ the batch, the rng and TPU
  # tiling padding), in host memory the 2 Adam moments and the EMA, sharded alike (3x the params' bytes).
  assert rec['host_offload'] and rec['argument_bytes'] < 2 * rec['param_bytes_per_device'], rec
  assert 2.9 <= rec['host_argument_bytes'] / rec['param_bytes_per_device'] <= 3.6, rec
  assert rec['host_output_bytes'] == rec['host_argument_bytes']
  c = rec['collectives']
  assert c['all-gather']['count'] > 0 and c['reduce-scatter']['count'] > 0, c
  # Gradients: the reduce-scatter carries a quarter-sized shard of (most of) the gradient, not the full one.
  assert c['reduce-scatter']['bytes'] + c['all-reduce']['bytes'] < 0.5 * rec['param_bytes_total'], c
  assert rec['model_flops'] > 0 and rec['compile_s'] > 0


@pytest.mark.parametrize('argv,env,want', [
    (['--config=c.py', '--target=cuda:h100x8'], None, '--xla_gpu_enable_triton_gemm=false'),
    (['--target', 'cuda:h100x1'], '--xla_dump_to=/d', '--xla_dump_to=/d --xla_gpu_enable_triton_gemm=false'),
    (['--target=cuda:h100x8'], '--xla_gpu_enable_triton_gemm=true', '--xla_gpu_enable_triton_gemm=true'),  # the user's
    (['--target=tpu:v5e:2x2'], None, None),
])
def test_cuda_targets_compile_gemms_for_cublas(monkeypatch, argv, env, want):
  import aot  # pylint: disable=g-import-not-at-top
  if env is None:
    monkeypatch.delenv('XLA_FLAGS', raising=False)
  else:
    monkeypatch.setenv('XLA_FLAGS', env)
  aot.cuda_gemm_flags(argv)
  assert os.environ.get('XLA_FLAGS') == want

"""Train-step time, forward time, memory, FLOPs and MFU of every temporal design, side by side in one process.

For each case (design x latent size x num_frames) it builds the model, the optimizer and the state exactly as the
training loop does (`framedit_jax.train.experiment.build_model / init_state / training_diffusion`,
`framedit_jax.train.step.make_train_step`), compiles the real jitted train step ahead of time, and measures:

  compile_s        lower + compile of the train step (s)
  step_ms          median train-step wall time after warm-up (ms), over rounds x steps calls
  fwd_ms           median forward (model.apply, no grad) wall time (ms)
  peak_bytes       peak memory: GPU `memory_stats()['peak_bytes_in_use']` (process lifetime), CPU VmHWM RSS
  peak_delta_bytes peak minus memory in use before the case's first step (its activations and temporaries)
  xla_temp_bytes   `compiled.memory_analysis().temp_size_in_bytes` of the train step (per case, exact)
  flops_step       analytic model FLOPs per train step (3x forward, framedit_jax.models.flops)
  flops_step_xla   XLA `cost_analysis()['flops']` of the compiled train step (includes elementwise work)
  mfu              flops_step / step time / (peak_tflops * 1e12)

One JSON line per case goes to stdout (and is appended to --out); then a ratio table against Local Factorized
at the same size and T (lines starting with '#'). A case that runs out of memory is recorded as {"oom": true}.

With interleaving (the default on CPU) every design of one (size, T) group is compiled first and then timed in
round-robin rounds, so load from other processes hits all designs alike; the ratios are what to read.

Examples:
  python benchmarks/step_time.py --tiny                       # CPU, < 10 min on 2 cores
  python benchmarks/step_time.py --tiny --designs local,h_concat --frames 8 --sizes 8 --rounds 1
  python benchmarks/step_time.py --h100 --out benchmarks/results/h100.jsonl
  python benchmarks/step_time.py --h100 --remat --designs h_concat --sizes 16 --frames 64,128,192,256
  python benchmarks/step_time.py --h100 --dry-run              # list cases and analytic FLOPs, compile nothing
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # pylint: disable=g-import-not-at-top,wrong-import-position

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import jax.numpy as jnp  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

from framedit_jax.models import flops as flops_lib  # pylint: disable=g-import-not-at-top,wrong-import-position

PRESETS = {
    # 2 CPU cores, < 10 min: S width (D=384, 6 heads), one spatial+temporal block pair, 16x16 latents (N=64),
    # B=1, float32. Peak: nominal 2 cores x 3 GHz x 32 fp32 FLOP/cycle (AVX2 FMA).
    'tiny': dict(model_size='S', rank='64-256', patch=2, depth=2, hidden_size=None, num_heads=None,
                 sizes='16', frames='16,32', batch=1, dtype='float32', remat=False, rounds=3, steps=1,
                 warmup=1, peak_tflops=0.192, interleave=True,
                 designs='local,full3d,g,h_concat,h_gated'),
    # XL/2 at 128^2 (16x16 latents, N=64) and 256^2 (32x32, N=256), bf16, official rank 128-512, B=4 per device.
    # peak: H100 SXM dense bf16 989 TFLOP/s.
    'h100': dict(model_size='XL', rank='128-512', patch=2, depth=None, hidden_size=None, num_heads=None,
                 sizes='16,32', frames='16,32,64,128', batch=4, dtype='bfloat16', remat=False, rounds=3, steps=5,
                 warmup=2, peak_tflops=989.0, interleave=False,
                 designs='local,full3d,g,h_concat,h_gated'),
}


def compile_train_step(model, diffusion, optimizer, config, state, batch, state_shardings, batch_shardings):
  """The training loop's jitted step (`train.step.train_step` under `train.step.jit_train_step`, as
  `make_train_step` builds it) compiled ahead of time. Returns (the compiled `step(state, batch, None) -> (state,
  metrics)`, compile seconds); the compiled object also gives `cost_analysis()`, `memory_analysis()`, `as_text()`."""
  import functools  # pylint: disable=g-import-not-at-top
  from framedit_jax.train import step as step_lib  # pylint: disable=g-import-not-at-top
  fn = functools.partial(step_lib.train_step, model=model, diffusion=diffusion, optimizer=optimizer, config=config)
  jitted = step_lib.jit_train_step(lambda s, b, frozen: fn(s, b), state_shardings, batch_shardings)
  t0 = time.perf_counter()
  compiled = jitted.lower(state, batch, None).compile()
  compile_s = time.perf_counter() - t0
  return compiled, compile_s


@dataclasses.dataclass
class Case:
  design: str
  name: str
  size: int
  frames: int
  overrides: dict[str, Any]


def make_config(args, case: Case):
  """The shared default config, set for this case (real optimizer/diffusion/loop settings)."""
  from configs import default  # pylint: disable=g-import-not-at-top
  config = default.get_config()
  config.model.name = case.name
  config.model.num_classes = 0
  config.model.dtype = args.dtype
  config.model.remat = bool(args.remat)
  config.model.remat_policy = getattr(args, 'remat_policy', 'auto')  # 'auto': framedit_jax/models/cpu/defaults.py
  config.model.scan_blocks = getattr(args, 'scan_blocks', 'auto')
  config.model.cpu_kernels = getattr(args, 'cpu_kernels', 'auto')
  config.model.attention_kernel = args.attention_kernel
  for k, v in case.overrides.items():
    config.model.overrides[k] = v
  config.data.num_frames = case.frames
  config.data.use_image_num = 0
  config.data.global_batch_size = args.batch
  config.vae.name = 'identity'
  return config


def analytic_shape(args, case: Case) -> flops_lib.ModelShape:
  return flops_lib.shape_from_name(case.name, input_size=case.size, num_frames=case.frames,
                                   batch_size=args.batch, **case.overrides)


class Built:
  """A compiled case: train step, forward, live state and batch."""

  def __init__(self, args, case: Case):
    from framedit_jax.parallel import mesh as mesh_lib  # pylint: disable=g-import-not-at-top
    from framedit_jax.train import experiment  # pylint: disable=g-import-not-at-top
    from framedit_jax.train.optimizer import make_optimizer  # pylint: disable=g-import-not-at-top

    self.case = case
    config = make_config(args, case)
    self.mesh = mesh_lib.make_mesh(config.mesh)
    latent_shape = (case.frames, case.size, case.size, 4)
    model = experiment.build_model(config, 4, case.size)
    diffusion = experiment.training_diffusion(config)
    optimizer = make_optimizer(config.optim)
    with jax.set_mesh(self.mesh):
      self.state, shardings = experiment.init_state(config, model, optimizer, self.mesh, latent_shape)
      batch_shardings = {'video': mesh_lib.batch_sharding(self.mesh, 5), 'label': mesh_lib.batch_sharding(self.mesh, 1)}
      rng = np.random.default_rng(0)
      host = {'video': rng.standard_normal((args.batch,) + latent_shape).astype(np.float32),
              'label': np.zeros((args.batch,), np.int32)}
      self.batch = jax.device_put(host, batch_shardings)
      self.step, self.compile_s = compile_train_step(model, diffusion, optimizer, config, self.state, self.batch,
                                                     shardings, batch_shardings)

      fwd = jax.jit(lambda p, x, t: model.apply({'params': p}, x, t))
      self.x = self.batch['video']
      self.t = jnp.full((args.batch,), 500, jnp.int32)
      t0 = time.perf_counter()
      self.fwd = fwd.lower(self.state.params, self.x, self.t).compile()
      self.fwd_compile_s = time.perf_counter() - t0
    self.params = int(sum(np.prod(a.shape) for a in jax.tree.leaves(self.state.params)))
    self.flops_step_xla = _xla_flops(self.step)
    self.flops_fwd_xla = _xla_flops(self.fwd)
    self.xla_temp_bytes = _temp_bytes(self.step)
    self.step_times: list[float] = []
    self.fwd_times: list[float] = []
    self.peak_bytes = self.peak_delta_bytes = 0
    self.memory_kind = ''

  def train_once(self):
    with jax.set_mesh(self.mesh):
      self.state, metrics = self.step(self.state, self.batch, None)
    return metrics['loss']

  def fwd_once(self):
    return self.fwd(self.state.params, self.x, self.t)

  def warmup(self, n: int):
    with common.PeakMemory() as mem:
      for _ in range(max(1, n)):
        jax.block_until_ready(self.train_once())
        jax.block_until_ready(self.fwd_once())
    self.peak_bytes, self.peak_delta_bytes, self.memory_kind = mem.peak_bytes, mem.delta_bytes, mem.kind

  def time_round(self, n: int):
    self.step_times += common.time_calls(self.train_once, n)
    self.fwd_times += common.time_calls(self.fwd_once, n)


def _xla_flops(compiled) -> float | None:
  try:
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost['flops'])
  except Exception:  # pylint: disable=broad-except
    return None


def _temp_bytes(compiled) -> int | None:
  try:
    return int(compiled.memory_analysis().temp_size_in_bytes)
  except Exception:  # pylint: disable=broad-except
    return None


def _is_design_space(name: str) -> bool:
  return name.startswith(('LatteV', 'VideoDiT-'))


def resolved_settings(args) -> dict[str, Any]:
  """scan_blocks, remat_policy, cpu_kernels as the model gets them ('auto' resolved), and which were 'auto'."""
  from framedit_jax.models.cpu import defaults  # pylint: disable=g-import-not-at-top
  asked = {k: getattr(args, k, 'auto') for k in ('scan_blocks', 'remat_policy', 'cpu_kernels')}
  return {**defaults.resolve(**asked), 'auto': sorted(k for k, v in asked.items() if v == 'auto')}


def base_record(args, case: Case) -> dict[str, Any]:
  if _is_design_space(case.name):  # Latte design space / VideoDiT: their own FLOP model; shape fields of Latte
    import design_flops  # pylint: disable=g-import-not-at-top  (benchmarks/design_flops.py)
    fwd = design_flops.design_forward_flops(case.name, input_size=case.size, num_frames=case.frames,
                                            batch_size=args.batch, **case.overrides)['total']
    latte = common.model_name('local', args.model_size, args.rank, args.patch)
    arch = {k: v for k, v in case.overrides.items() if k in ('depth', 'hidden_size', 'num_heads')}
    shape = flops_lib.shape_from_name(latte, input_size=case.size, num_frames=case.frames, batch_size=args.batch,
                                      **arch)
  else:
    shape = analytic_shape(args, case)
    fwd = flops_lib.forward_flops(shape)['total']
  return {
      'bench': 'step_time', 'design': case.design, 'model': case.name, 'latent_size': case.size,
      'tokens_per_frame': shape.tokens_per_frame, 'num_frames': case.frames, 'batch': args.batch,
      'depth': shape.depth, 'hidden_size': shape.hidden_size, 'num_heads': shape.num_heads, 'dtype': args.dtype,
      'remat': bool(args.remat), **resolved_settings(args),
      'options': {k: v for k, v in case.overrides.items() if k not in ('depth', 'hidden_size', 'num_heads')},
      'flops_fwd': fwd, 'flops_step': flops_lib.TRAIN_FLOPS_MULTIPLIER * fwd,
      'temporal_score_elements': flops_lib.temporal_attention_score_elements(shape),
  }


def result_record(args, built: Built) -> dict[str, Any]:
  rec = base_record(args, built.case)
  step_s = common.median(built.step_times)
  fwd_s = common.median(built.fwd_times)
  achieved = rec['flops_step'] / step_s
  rec.update({
      'oom': False, 'params': built.params, 'compile_s': round(built.compile_s, 3),
      'fwd_compile_s': round(built.fwd_compile_s, 3), 'step_ms': round(1e3 * step_s, 3),
      'step_ms_min': round(1e3 * min(built.step_times), 3), 'fwd_ms': round(1e3 * fwd_s, 3),
      'n_timed': len(built.step_times), 'peak_bytes': built.peak_bytes, 'peak_delta_bytes': built.peak_delta_bytes,
      'memory_kind': built.memory_kind, 'xla_temp_bytes': built.xla_temp_bytes,
      'flops_step_xla': built.flops_step_xla, 'flops_fwd_xla': built.flops_fwd_xla,
      'achieved_tflops': round(achieved / 1e12, 6), 'peak_tflops': args.peak_tflops,
      'mfu': round(achieved / (args.peak_tflops * 1e12), 6),
  })
  return rec


def oom_record(args, case: Case, err: BaseException) -> dict[str, Any]:
  rec = base_record(args, case)
  rec.update({'oom': True, 'error': str(err).splitlines()[0][:300] if str(err) else type(err).__name__})
  return rec


def make_cases(args) -> list[list[Case]]:
  """Groups of cases sharing (latent size, T), each group in --designs order (local first if present)."""
  overrides = {k: getattr(args, k) for k in ('depth', 'hidden_size', 'num_heads') if getattr(args, k) is not None}
  designs = common.parse_list(args.designs)
  if 'local' in designs:
    designs = ['local'] + [d for d in designs if d != 'local']
  groups = []
  for size in common.parse_list(args.sizes, int):
    for frames in common.parse_list(args.frames, int):
      groups.append([Case(d, common.model_name(d, args.model_size, args.rank, args.patch), size, frames,
                          dict(overrides, **common.DESIGN_OPTIONS.get(d, {}))) for d in designs])
  return groups


def _free(objs):
  objs.clear()
  gc.collect()


def run_group(args, group: list[Case]) -> list[dict[str, Any]]:
  """Builds, warms up and times one (size, T) group; returns its records in group order."""
  records: dict[int, dict[str, Any]] = {}
  live: dict[int, Built] = {}

  def attempt(i, fn):
    try:
      fn()
      return True
    except Exception as err:  # pylint: disable=broad-except
      if not common.is_oom(err):
        raise
      records[i] = oom_record(args, group[i], err)
      live.pop(i, None)
      gc.collect()
      return False

  def build(i):
    live[i] = Built(args, group[i])
    live[i].warmup(args.warmup)

  if args.interleave:
    for i in range(len(group)):
      attempt(i, lambda i=i: build(i))
    for _ in range(args.rounds):
      for i in list(live):
        attempt(i, lambda i=i: live[i].time_round(args.steps))
    for i, b in live.items():
      records[i] = result_record(args, b)
    _free(live)
  else:
    for i in range(len(group)):
      def full(i=i):
        build(i)
        for _ in range(args.rounds):
          live[i].time_round(args.steps)
      if attempt(i, full):
        records[i] = result_record(args, live.pop(i))
      _free(live)
  return [records[i] for i in range(len(group))]


def ratio_table(records: list[dict[str, Any]]) -> list[str]:
  """Text table: per (size, T), each design's step/forward time, FLOPs and memory relative to Local Factorized."""
  lines = ['# ratios vs Local Factorized at the same latent size, T (step = median train step, fwd = forward, '
           'flops = analytic, mem = peak_delta_bytes)',
           f'# {"size":>4} {"N":>4} {"T":>4} {"design":<10} {"step_ms":>10} {"step":>6} {"fwd":>6} {"flops":>6} '
           f'{"xla":>6} {"mem":>6} {"mfu":>7}']
  groups: dict[tuple[int, int], list[dict[str, Any]]] = {}
  for r in records:
    groups.setdefault((r['latent_size'], r['num_frames']), []).append(r)
  for (size, frames), rs in groups.items():
    base = next((r for r in rs if r['design'] == 'local' and not r['oom']), None)
    for r in rs:
      if r['oom']:
        lines.append(f'# {size:>4} {r["tokens_per_frame"]:>4} {frames:>4} {r["design"]:<10} {"OOM":>10}')
        continue
      ratio = lambda k: (f'{r[k] / base[k]:6.2f}' if base and base.get(k) and r.get(k) is not None else
                         f'{"-":>6}')
      lines.append(f'# {size:>4} {r["tokens_per_frame"]:>4} {frames:>4} {r["design"]:<10} {r["step_ms"]:>10.1f} '
                   f'{ratio("step_ms")} {ratio("fwd_ms")} {ratio("flops_step")} {ratio("flops_step_xla")} '
                   f'{ratio("peak_delta_bytes")} {r["mfu"]:7.4f}')
  ooms: dict[tuple[str, int], int] = {}
  for r in records:
    if r['oom']:
      key = (r['design'], r['latent_size'])
      ooms[key] = min(ooms.get(key, r['num_frames']), r['num_frames'])
  for (design, size), frames in sorted(ooms.items()):
    lines.append(f'# first OOM: {design} at latent {size}x{size}, T={frames}')
  return lines


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  g = p.add_mutually_exclusive_group()
  g.add_argument('--tiny', action='store_true', help='CPU preset (default)')
  g.add_argument('--h100', action='store_true', help='XL/2, bf16, 128^2 and 256^2, T 16..128')
  p.add_argument('--designs', help=f'comma list of {",".join(common.DESIGNS)}')
  p.add_argument('--frames', help='comma list of num_frames')
  p.add_argument('--sizes', help='comma list of latent sizes H=W (8 -> N=16, 16 -> N=64, 32 -> N=256 at p=2)')
  p.add_argument('--model-size', help='S, B, M, L or XL')
  p.add_argument('--rank', help="FrameDiT r_qk-r_v: '64-256' or '128-512'")
  p.add_argument('--patch', type=int)
  p.add_argument('--depth', type=int, help='architecture override (None = the size default)')
  p.add_argument('--hidden-size', type=int)
  p.add_argument('--num-heads', type=int)
  p.add_argument('--batch', type=int)
  p.add_argument('--dtype', choices=('float32', 'bfloat16'))
  p.add_argument('--remat', action='store_true', default=None, help='nn.remat every block')
  # The next three default to 'auto', as configs/default.py: per backend, framedit_jax/models/cpu/defaults.py.
  p.add_argument('--remat-policy', default='auto',
                 help="per-block policy: auto | none | full | dots_saveable | dots_with_no_batch_dims_saveable | ...")
  p.add_argument('--scan-blocks', dest='scan_blocks', action='store_true', default='auto',
                 help='blocks as one lax.scan (default: auto = unrolled on CPU, scanned on GPU/TPU)')
  p.add_argument('--no-scan-blocks', dest='scan_blocks', action='store_false', help='unrolled blocks')
  p.add_argument('--cpu-kernels', default='auto', choices=('auto', 'on', 'off'),
                 help='config.model.cpu_kernels (auto = on for CPU; see framedit_jax/models/cpu/__init__.py)')
  p.add_argument('--attention-kernel', default='einsum', choices=('einsum', 'cudnn', 'xla'))
  p.add_argument('--rounds', type=int, help='timing rounds (round-robin over designs when interleaving)')
  p.add_argument('--steps', type=int, help='timed calls per design per round')
  p.add_argument('--warmup', type=int)
  p.add_argument('--peak-tflops', type=float, help='device peak for MFU (H100 SXM bf16 dense: 989)')
  p.add_argument('--interleave', dest='interleave', action='store_true', default=None)
  p.add_argument('--no-interleave', dest='interleave', action='store_false')
  p.add_argument('--out', help='append JSON lines here (e.g. benchmarks/results/cpu_tiny.jsonl)')
  p.add_argument('--dry-run', action='store_true', help='print the cases with analytic FLOPs; compile nothing')
  args = p.parse_args(argv)
  preset = PRESETS['h100' if args.h100 else 'tiny']
  for k, v in preset.items():
    if getattr(args, k, None) is None:
      setattr(args, k, v)
  args.preset = 'h100' if args.h100 else 'tiny'
  return args


def main(argv=None) -> list[dict[str, Any]]:
  """Runs the benchmark; returns the case records (also printed as JSON lines)."""
  args = parse_args(argv)
  info = common.machine_info()
  groups = make_cases(args)
  records = []
  header = {'bench': 'step_time', 'header': True, 'preset': args.preset, **info,
            'peak_tflops': args.peak_tflops, 'interleave': args.interleave, 'rounds': args.rounds,
            'steps': args.steps, 'flops_convention': 'matmul-only model FLOPs, train step = 3x forward'}
  common.emit(header, args.out)
  for group in groups:
    if args.dry_run:
      for case in group:
        rec = base_record(args, case)
        rec['dry_run'] = True
        common.emit(rec, args.out)
        records.append(rec)
      continue
    for rec in run_group(args, group):
      common.emit(rec, args.out)
      records.append(rec)
  if not args.dry_run:
    table = ratio_table(records)
    print('\n'.join(table), flush=True)
  return records


if __name__ == '__main__':
  main()

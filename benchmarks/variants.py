r"""Implementation variants of one train step, timed side by side in one process: remat policy x CPU kernels.

  python benchmarks/variants.py --designs local --depth 12 --batch 2 --frames 16 --sizes 16 \
      --variants none:off,none:on,dots_with_no_batch_dims_saveable:off,dots_with_no_batch_dims_saveable:on \
      --out benchmarks/results/remat_barrier_cpu.jsonl

Every variant (`POLICY:KERNELS`, KERNELS = model.cpu_kernels 'on' / 'off' / 'auto') of every case is compiled
once, warmed up, then timed in round-robin rounds (load from other processes hits all variants alike); one JSON
line per variant with the median step / forward time and `step_vs_first` (step time / the first variant's step time). Other flags as
`benchmarks/step_time.py` (`--tiny` preset: S width, fp32).
"""

import copy
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # pylint: disable=g-import-not-at-top
import step_time  # pylint: disable=g-import-not-at-top


def main(argv=None):
  argv = list(sys.argv[1:] if argv is None else argv)
  variants = 'none:off,dots_with_no_batch_dims_saveable:on'
  if '--variants' in argv:
    i = argv.index('--variants')
    variants = argv[i + 1]
    del argv[i:i + 2]
  args = step_time.parse_args(argv)
  pairs = [tuple(v.split(':')) for v in variants.split(',')]
  for policy, barrier in pairs:
    if barrier not in ('on', 'off', 'auto'):
      raise SystemExit(f'--variants: cpu_kernels must be on|off|auto in {policy}:{barrier}')
  common.emit({'bench': 'variants', 'header': True, **common.machine_info(), 'rounds': args.rounds,
               'steps': args.steps, 'variants': variants, 'ld_preload': os.environ.get('LD_PRELOAD', '')}, args.out)
  records = []
  for group in step_time.make_cases(args):
    for case in group:
      built = []
      for policy, barrier in pairs:
        a = copy.copy(args)
        a.remat_policy, a.cpu_kernels = policy, barrier
        b = step_time.Built(a, case)
        b.warmup(args.warmup)
        built.append((a, b))
      for _ in range(args.rounds):
        for _, b in built:
          b.time_round(args.steps)
      first = None
      for a, b in built:
        rec = step_time.result_record(a, b)
        rec.update(bench='variants', variant=f'{a.remat_policy}:{a.cpu_kernels}')
        first = first or rec['step_ms']
        rec['step_vs_first'] = round(rec['step_ms'] / first, 3)
        common.emit(rec, args.out)
        records.append(rec)
      del built
  for r in records:
    print(f"# {r['design']:9s} T={r['num_frames']:3d} depth={r['depth']:2d} {r['variant']:40s} "
          f"step {r['step_ms']:9.1f} ms  x{r['step_vs_first']:.3f}  fwd {r['fwd_ms']:8.1f} ms", flush=True)
  return records


if __name__ == '__main__':
  main()

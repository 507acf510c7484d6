"""Where a design's train step spends its time: a jax.profiler trace, summed per XLA op.

Builds the same compiled train step as benchmarks/step_time.py for each design, runs --steps steps under
`jax.profiler.trace(create_perfetto_trace=True)`, and prints the top ops by total time (one JSON line per design
with the list, and the top ops of each of the 8 largest op kinds). Times are summed raw durations: on a busy
machine they include time spent waiting for cores, so read them as shares of the step, not as wall time. Op
names are XLA HLO instruction names (fusion.N, dot.N, ...); look them up in `--dump-hlo DIR` (the optimized HLO
text of each train step) to see what each computes.

  python benchmarks/profile_ops.py --designs local,g --frames 16 --sizes 16 --depth 2
"""

from __future__ import annotations

import collections
import glob
import gzip
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # pylint: disable=g-import-not-at-top,wrong-import-position
import step_time  # pylint: disable=g-import-not-at-top,wrong-import-position

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position


def op_times(trace_dir: str) -> dict[str, float]:
  """Sums `dur` (us) of complete events by name from the newest perfetto trace under trace_dir."""
  files = sorted(glob.glob(os.path.join(trace_dir, '**', '*perfetto_trace.json.gz'), recursive=True),
                 key=os.path.getmtime)
  if not files:
    return {}
  with gzip.open(files[-1], 'rt') as f:
    data = json.load(f)
  events = data['traceEvents'] if isinstance(data, dict) else data
  out: dict[str, float] = collections.defaultdict(float)
  for e in events:
    if e.get('ph') == 'X' and 'dur' in e:
      out[e.get('name', '?')] += float(e['dur'])
  return out


def main(argv=None):
  argv = list(sys.argv[1:] if argv is None else argv)
  dump = None
  if '--dump-hlo' in argv:
    i = argv.index('--dump-hlo')
    dump = argv[i + 1]
    del argv[i:i + 2]
  args = step_time.parse_args(argv)
  for group in step_time.make_cases(args):
    for case in group:
      built = step_time.Built(args, case)
      built.warmup(1)
      if dump:
        os.makedirs(dump, exist_ok=True)
        with open(os.path.join(dump, f'{case.design}_{case.size}_{case.frames}.hlo.txt'), 'w') as f:
          f.write(built.step.as_text())
      with tempfile.TemporaryDirectory() as tmp:
        with jax.profiler.trace(tmp, create_perfetto_trace=True):
          for _ in range(args.steps):
            jax.block_until_ready(built.train_once())
        times = op_times(tmp)
      skip = ('ThunkExecutor', 'PjitFunction', 'PjRt', 'Execute', 'jit_', 'XlaModule', 'ExecuteHelper')
      ops = sorted(((k, v) for k, v in times.items() if not k.startswith(skip) and not k.startswith('$')), key=lambda kv: -kv[1])
      total = sum(v for _, v in ops)
      kinds: dict[str, float] = collections.defaultdict(float)
      for k, v in ops:
        kinds[k.split('.')[0]] += v
      common.emit({'bench': 'profile_ops', 'argv': ' '.join(argv), **common.machine_info(),
                   'ld_preload': os.environ.get('LD_PRELOAD', ''),
                   'design': case.design, 'latent_size': case.size, 'num_frames': case.frames,
                   'steps': args.steps, 'op_total_ms': round(total / 1e3 / args.steps, 2),
                   'by_kind_ms_per_step': {k: round(v / 1e3 / args.steps, 2)
                                           for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])[:8]},
                   'top_ops_ms_per_step': [[k, round(v / 1e3 / args.steps, 2)] for k, v in ops[:15]],
                   'top_ops_by_kind_ms_per_step': {
                       kind: [[k, round(v / 1e3 / args.steps, 2)] for k, v in ops if k.split('.')[0] == kind][:4]
                       for kind, _ in sorted(kinds.items(), key=lambda kv: -kv[1])[:8]}}, args.out)
      del built


if __name__ == '__main__':
  main()

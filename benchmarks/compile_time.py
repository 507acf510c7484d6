"""Compile time of the real train step, unrolled vs scanned blocks (`config.model.scan_blocks`), per model.

Lowers and compiles the jitted train step (hybrid loss, clip, AdamW, EMA) against abstract state and batch
(`jax.eval_shape`, nothing is allocated, so XL fits on any host) and prints one JSON line per (model, scan):
`compile_s` and the number of HLO instructions of the optimized module.

  python benchmarks/compile_time.py --models FrameDiTH-XL/128-512/2-concat --latent 32 --frames 16 \
      --out benchmarks/results/compile_time_cpu.jsonl
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # pylint: disable=g-import-not-at-top,wrong-import-position
import gpu_suite  # pylint: disable=g-import-not-at-top,wrong-import-position


def main(argv=None) -> None:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument('--models', default='FrameDiTH-XL/128-512/2-concat')
  p.add_argument('--latent', type=int, default=32)
  p.add_argument('--frames', type=int, default=16)
  p.add_argument('--batch', type=int, default=1)
  p.add_argument('--dtype', default='bfloat16')
  p.add_argument('--out')
  args = p.parse_args(argv)
  common.emit({'bench': 'compile_time', 'header': True, **common.machine_info()}, args.out)
  for name in args.models.split(','):
    for scan in (True, False):
      config = gpu_suite._config(name, args.frames, args.batch, args.dtype, 'none', smoke=False)  # pylint: disable=protected-access
      config.model.scan_blocks = scan
      case = gpu_suite.StepCase(config, args.latent, args.batch, run=False)
      n_instr = sum(1 for line in case.compiled.as_text().splitlines() if ' = ' in line)
      common.emit({'bench': 'compile_time', 'model': name, 'scan_blocks': scan, 'latent_size': args.latent,
                   'num_frames': args.frames, 'batch': args.batch, 'dtype': args.dtype, 'params': case.params,
                   'compile_s': round(case.compile_s, 2), 'hlo_instructions': n_instr}, args.out)


if __name__ == '__main__':
  main()

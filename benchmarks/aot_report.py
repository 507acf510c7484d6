"""Markdown table of benchmarks/aot.py JSON lines (the tables in docs/scaling.md).

  python benchmarks/aot_report.py benchmarks/results/aot_a.jsonl [more.jsonl ...]
"""

from __future__ import annotations

import json
import sys

GiB = 2**30


def _mesh(m: dict) -> str:
  return 'x'.join(f'{k}{v}' for k, v in m.items() if v != 1) or 'single'


def _coll(c: dict) -> str:
  short = {'all-gather': 'AG', 'reduce-scatter': 'RS', 'all-reduce': 'AR', 'all-to-all': 'A2A',
           'collective-permute': 'CP'}
  size = lambda b: f'{b / GiB:.2f}G' if b >= GiB / 10 else f'{b / 2**20:.2f}M'
  parts = [f"{short[k]} {c[k]['count']}/{size(c[k]['bytes'])}" for k in short if c.get(k, {}).get('count')]
  return ', '.join(parts) or 'none'


def row(r: dict) -> str:
  peak = f"{r['peak_bytes'] / GiB:.2f}" if 'peak_bytes' in r else '-'
  status = r['status'] if r['status'] != 'OOM' or 'peak_bytes' in r else 'OOM (compiler)'
  return (f"| {r['what']} | {r['target']} | {r['model']} | {r['frames']} | {r['resolution']} | "
          f"{r['per_device_batch']:g} | {_mesh(r['mesh'])} | {r['remat_policy']}{' scan' if r['scan_blocks'] else ''}"
          f" | {r.get('context_parallel', 'gather')} | {peak} | {r['hbm_bytes'] / GiB:.2f} | {status} | "
          f"{r['compile_s']:.0f} | {_coll(r['collectives']) if 'collectives' in r else '-'} | "
          f"{_tflops(r)} |")


def _tflops(r: dict) -> str:
  """Model TFLOP per device, or '-' where models/flops.py does not describe the model (aot.py writes -1)."""
  v = r.get('model_flops_per_device', -1)
  return f'{v / 1e12:.1f}' if v >= 0 else '-'



HEADER = ('| step | target | model | T | res | batch/dev | mesh | remat | ctx | peak GiB/dev | HBM GiB | fits | '
          'compile s | collectives per step (count/bytes) | model TFLOP/dev |\n'
          '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|')


def main(paths: list[str]) -> None:
  print(HEADER)
  for p in paths:
    with open(p) as f:
      for line in f:
        if line.strip():
          print(row(json.loads(line)))


if __name__ == '__main__':
  main(sys.argv[1:])

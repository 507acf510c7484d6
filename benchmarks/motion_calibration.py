r"""What an MFD ratio means: the motion study's score of real clips after controlled damage.

  python benchmarks/motion_calibration.py            # ~1 min on 2 cores; JSON lines to results/motion_calibration_cpu.jsonl

The motion study (benchmarks/motion_study.py) reports MFD(samples, real) as a multiple of MFD(real, real) and
calls a design "learned" at <= 2x. This script gives that scale a meaning. It takes the study's real test clips of
each motion class: half A (the reference) and half B (the real-vs-real baseline), as the study does, and a third,
held-out set C of the same size. It damages C in known ways and scores each version against A with the study's
own Scorer:
  - `pixel_noise` s: N(0, s^2) on every pixel (values in [-1, 1]), clipped;
  - `edge_noise` s: N(0, s^2) on the shape's edge pixels only (the pixels whose central difference exceeds 0.2
    of the [0, 1] range), the same value on the three channels: a ragged, per-frame-different outline;
  - `jitter` a: every frame rolled by its own random integer offset in [-a, a]^2 px (a trajectory error of up
    to a px per frame, the shape itself intact);
  - `shuffle`: the frames of each clip in a random order (every frame real, the motion gone);
  - `static`: the first frame repeated;
  - `other_class`: clips of the other motion class (right frames, wrong speed).
Undamaged C against A is the same-N real-vs-real spread. One JSON line per class and damage, then a table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # pylint: disable=g-import-not-at-top,wrong-import-position
import motion_study  # pylint: disable=g-import-not-at-top,wrong-import-position
import motion_study_report as report  # pylint: disable=g-import-not-at-top,wrong-import-position

DEFAULT_OUT = os.path.join(ROOT, 'benchmarks', 'results', 'motion_calibration_cpu.jsonl')


def edge_mask(clips: np.ndarray) -> np.ndarray:
  """(N, T, H, W, 1) bool: pixels whose central difference (either axis, first channel, [0, 1] units) exceeds 0.2."""
  u = (clips[..., 0] + 1.0) / 2.0
  g = np.zeros_like(u)
  g[..., 1:-1, :] += np.abs(u[..., 2:, :] - u[..., :-2, :])
  g[..., :, 1:-1] += np.abs(u[..., :, 2:] - u[..., :, :-2])
  return (g > 0.2)[..., None]


def damages(clips: np.ndarray, other: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
  """{name: damaged copy of clips (N, T, H, W, 3) in [-1, 1]}."""
  out = {'none': clips}
  for s in (0.05, 0.1, 0.2):
    out[f'pixel_noise {s:g}'] = np.clip(clips + rng.normal(0.0, s, clips.shape), -1.0, 1.0)
  m = edge_mask(clips)
  for s in (0.2, 0.4, 0.8):
    out[f'edge_noise {s:g}'] = np.clip(clips + m * rng.normal(0.0, s, clips.shape[:-1] + (1,)), -1.0, 1.0)
  for a in (1, 2):
    j = clips.copy()
    for i in range(j.shape[0]):
      for t in range(j.shape[1]):
        j[i, t] = np.roll(clips[i, t], tuple(int(v) for v in rng.integers(-a, a + 1, 2)), axis=(0, 1))
    out[f'jitter {a}'] = j
  out['shuffle'] = np.stack([c[rng.permutation(c.shape[0])] for c in clips])
  out['static'] = np.repeat(clips[:, :1], clips.shape[1], axis=1)
  out['other_class'] = other
  return out


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--samples', type=int, default=32, help='clips per set (the study scores 32 vs 32)')
  p.add_argument('--num-frames', type=int, default=None, help='clip length (default: the config, 8)')
  p.add_argument('--dataset', default=None, help='default: the config, moving_shapes/motion2')
  p.add_argument('--seed', type=int, default=0, help='the damage draws')
  p.add_argument('--out', default=DEFAULT_OUT)
  args = p.parse_args(argv)
  study_args = motion_study.parse_args(['--num-frames', str(args.num_frames)] if args.num_frames else [])
  study_args.dataset = args.dataset
  config = motion_study.build_config(study_args, 'h_concat', 0)
  n = args.samples
  real = motion_study.real_clips_by_class(config, 3 * n, len(report.SPLITS))  # A, B (the study's) and C
  rng = np.random.default_rng(args.seed)
  header = {'header': True, 'study': 'motion_calibration', 'git_commit': common.git_commit(dirty=True),
            'machine': motion_study.machine_info(), 'args': vars(args), 'dataset': config.data.dataset,
            'num_frames': int(config.data.num_frames)}
  rows = [header]
  for k, split in enumerate(report.SPLITS):
    scorer = report.Scorer(real[k][:2 * n], None, report.MOTION_KWARGS)
    base = scorer.baseline()['mfd_real_vs_real']
    for name, clips in damages(real[k][2 * n:], real[1 - k][2 * n:], rng).items():
      m = scorer.score(clips)
      rows.append({'split': split, 'damage': name, 'mfd': m['mfd'], 'mfd_real_vs_real': base,
                   'mfd_ratio': m['mfd'] / base, 'fcd': m['fcd'],
                   'incoherent_fraction': m['incoherent_fraction_samples'], 'mean_speed': m['mean_speed_samples'],
                   'num_clips': len(clips)})
  with open(args.out, 'a') as f:
    for r in rows:
      f.write(json.dumps(r) + '\n')
  print(f'| damage | ' + ' | '.join(f'{s}: MFD / real vs real | incoherent' for s in report.SPLITS) + ' |')
  for name in dict.fromkeys(r['damage'] for r in rows[1:]):
    cells = []
    for s in report.SPLITS:
      r = next(r for r in rows[1:] if r['damage'] == name and r['split'] == s)
      cells.append(f'{r["mfd_ratio"]:.2f} | {r["incoherent_fraction"]:.2f}')
    print(f'| {name} | ' + ' | '.join(cells) + ' |')
  print(f'wrote {args.out}')
  return rows


if __name__ == '__main__':
  main()

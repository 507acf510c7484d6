"""Scoring and reporting of the motion study (benchmarks/motion_study.py): the Scorer, the seed summary, the
pairwise verdicts, the plot and the tables.

Not a library module: motion_study.py imports it from this folder (after putting the repository on sys.path).
"""

from __future__ import annotations

import itertools

import numpy as np

from framedit_jax.eval.frechet import frechet_distance_of_features as frechet

LABELS = {'local': 'Local Factorized (Latte)', 'g': 'FrameDiT-G', 'h_concat': 'FrameDiT-H concat',
          'full3d': 'Full 3D (DiT3D)'}
SPLITS = ('small', 'large')  # motion class 0 (0.5-1 px/frame) and 1 (3-4 px/frame) of moving_shapes/motion2
MOTION_KWARGS = {'radius': 5, 'speed_scale': 1.0}  # search to 5 px (> the 4 px/frame top speed); speeds in px/frame
LEARNED = 2.0  # "learned the motion": MFD(samples, real) <= LEARNED x MFD(real, real)
METRICS = ('mfd', 'mfd_ratio', 'fcd', 'mean_speed_samples', 'incoherent_fraction_samples', 'fvd')


class Scorer:
  """Features of the real halves A and B once; then every sample set is scored against A.

  extractor: the I3D feature function for FVD, or None to skip FVD. motion_kwargs: `motion_stats.clip_features`
  options (search radius, speed units).
  """

  def __init__(self, real, extractor=None, motion_kwargs=None):
    import motion_stats  # pylint: disable=g-import-not-at-top  (benchmarks/motion_stats.py)
    self.i3d = extractor
    self.motion_kwargs = dict(motion_kwargs or {})
    n = len(real) // 2
    self.real_a, self.real_b = real[:n], real[n:2 * n]
    self.feats = {'a': self.features(self.real_a), 'b': self.features(self.real_b)}
    self.motion_real = motion_stats.summary(self.feats['a']['motion'])

  def features(self, clips) -> dict:
    import frame_stats  # pylint: disable=g-import-not-at-top  (benchmarks/frame_stats.py)
    import motion_stats  # pylint: disable=g-import-not-at-top
    out = {'motion': motion_stats.features(clips, **self.motion_kwargs), 'frame': frame_stats.frame_features(clips)}
    if self.i3d is not None:
      out['i3d'] = np.asarray(self.i3d(clips), np.float64)
    return out

  def baseline(self) -> dict:
    a, b = self.feats['a'], self.feats['b']
    res = {'mfd_real_vs_real': frechet(a['motion'], b['motion']), 'fcd_real_vs_real': frechet(a['frame'], b['frame'])}
    if 'i3d' in a:
      res['fvd_real_vs_real'] = frechet(a['i3d'], b['i3d'])
    return res

  def score(self, fake) -> dict:
    import motion_stats  # pylint: disable=g-import-not-at-top
    f, a = self.features(fake), self.feats['a']
    res = {'mfd': frechet(f['motion'], a['motion']), 'fcd': frechet(f['frame'], a['frame'])}
    if 'i3d' in f:
      res['fvd'] = frechet(f['i3d'], a['i3d'])
    res.update({f'{k}_samples': v for k, v in motion_stats.summary(f['motion']).items()})
    return res


def summarize(rows) -> list[dict]:
  """Per design x split: mean, std (ddof 1), min, max over seeds of each metric; then per split and pair of
  designs the difference of mean MFD and whether it exceeds the seed spread (module docstring of motion_study)."""
  out = []
  designs = list(dict.fromkeys(r['design'] for r in rows))
  for split in SPLITS:
    stats = {}
    for d in designs:
      rs = [r for r in rows if r['design'] == d and r['split'] == split]
      if not rs:
        continue
      s = {'summary': True, 'design': d, 'label': LABELS[d], 'split': split, 'seeds': [r['seed'] for r in rs],
           'steps': rs[0]['steps'], 'median_step_s': float(np.median([r['median_step_s'] for r in rs])),
           'mfd_real_vs_real': rs[0]['mfd_real_vs_real']}
      for m in METRICS:
        v = np.asarray([r[m] for r in rs if m in r], np.float64)
        if v.size:
          s[m] = {'mean': float(v.mean()), 'std': float(v.std(ddof=1)) if v.size > 1 else 0.0,
                  'min': float(v.min()), 'max': float(v.max()), 'values': v.tolist()}
      s['learned'] = bool(s['mfd']['mean'] <= LEARNED * s['mfd_real_vs_real'])
      s['learned_seeds'] = int(sum(r['mfd'] <= LEARNED * r['mfd_real_vs_real'] for r in rs))
      stats[d] = s
      out.append(s)
    for a, b in itertools.combinations(stats, 2):
      ma, mb = stats[a]['mfd'], stats[b]['mfd']
      diff = ma['mean'] - mb['mean']
      spread = ma['std'] + mb['std']
      disjoint = ma['max'] < mb['min'] or mb['max'] < ma['min']
      out.append({'pair': True, 'split': split, 'a': a, 'b': b, 'mfd_diff': diff, 'seed_spread': spread,
                  'ranges_disjoint': bool(disjoint), 'exceeds_spread': bool(abs(diff) > spread and disjoint),
                  'better': (a if diff < 0 else b) if abs(diff) > spread and disjoint else None})
  return out


def plot(summary, baselines, path):
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  except ImportError:
    print('(no plot: matplotlib is not installed; pip install -e .[bench])')
    return None
  stats = [s for s in summary if s.get('summary')]
  designs = list(dict.fromkeys(s['design'] for s in stats))
  fig, axes = plt.subplots(1, 2 * len(SPLITS), figsize=(4.0 * 2 * len(SPLITS), 3.6))
  panels = [(k, split, m) for k, split in enumerate(SPLITS) for m in ('mfd', 'mean_speed_samples')]
  for ax, (k, split, m) in zip(axes, panels):
    for j, d in enumerate(designs):
      s = next((s for s in stats if s['design'] == d and s['split'] == split), None)
      if s is None:
        continue
      ax.bar(j, s[m]['mean'], 0.6, yerr=s[m]['std'], capsize=3, color=f'C{j}')
      ax.plot(np.full(len(s[m]['values']), j), s[m]['values'], 'k.', ms=4)
    if m == 'mfd':
      base = baselines[k]['mfd_real_vs_real']
      ax.axhline(base, color='k', ls='--', lw=1, label='real vs real')
      ax.axhline(LEARNED * base, color='k', ls=':', lw=1, label=f'{LEARNED:g}x real vs real')
      ax.set_yscale('log')
      ax.legend(fontsize=7)
    ax.set_xticks(np.arange(len(designs)))
    ax.set_xticklabels([LABELS[d].replace(' (', '\n(') for d in designs], fontsize=7)
    ax.set_title(f'{split} motion: ' + ('MFD (mean ± std over seeds) ↓' if m == 'mfd' else 'mean speed, px/frame'),
                 fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def real_reference(rows, split) -> dict:
  """The real-vs-real and real-clip figures of a split, as every row of that split carries them."""
  r = next(r for r in rows if r['split'] == split)
  return {k: r[k] for k in ('mfd_real_vs_real', 'fcd_real_vs_real', 'real_mean_speed', 'gt_mean_speed',
                            'real_incoherent_fraction')}


def print_tables(summary, rows):
  stats = [s for s in summary if s.get('summary')]
  pairs = [s for s in summary if s.get('pair')]
  print('\n| split | design | steps | MFD mean ± std (seeds) | / real vs real | learned (seeds) | FCD | speed | '
        'incoherent |')
  print('|---|---|---|---|---|---|---|---|---|')
  for split in SPLITS:
    for s in (s for s in stats if s['split'] == split):
      print(f'| {split} | {s["label"]} | {s["steps"]} | {s["mfd"]["mean"]:.3f} ± {s["mfd"]["std"]:.3f} | '
            f'{s["mfd_ratio"]["mean"]:.1f} | {s["learned_seeds"]}/{len(s["seeds"])} | {s["fcd"]["mean"]:.3f} | '
            f'{s["mean_speed_samples"]["mean"]:.2f} | {s["incoherent_fraction_samples"]["mean"]:.2f} |')
    ref = real_reference(rows, split)
    print(f'| {split} | real vs real | | {ref["mfd_real_vs_real"]:.3f} | 1.0 | | {ref["fcd_real_vs_real"]:.3f} | '
          f'{ref["real_mean_speed"]:.2f} (GT {ref["gt_mean_speed"]:.2f}) | {ref["real_incoherent_fraction"]:.2f} |')
  print('\n| split | pair | MFD diff (a - b) | seed spread (std a + std b) | beyond the spread? |')
  print('|---|---|---|---|---|')
  for p in pairs:
    verdict = f'yes: {LABELS[p["better"]]} better' if p['exceeds_spread'] else 'no'
    print(f'| {p["split"]} | {LABELS[p["a"]]} vs {LABELS[p["b"]]} | {p["mfd_diff"]:+.3f} | {p["seed_spread"]:.3f} | '
          f'{verdict} |')
  print()


def main(argv=None):
  """Re-reads committed runs: python benchmarks/motion_study_report.py RUN.jsonl [MORE.jsonl] [--steps N] [--out F]

  Summarises every seed's row at N steps (default: each file's final step), across files, as the study does;
  --out appends the summary lines to F (and writes F's plot beside it)."""
  import argparse  # pylint: disable=g-import-not-at-top
  import json  # pylint: disable=g-import-not-at-top
  ap = argparse.ArgumentParser(description=main.__doc__.split('\n')[0])
  ap.add_argument('runs', nargs='+')
  ap.add_argument('--steps', type=int, default=None)
  ap.add_argument('--out', default=None)
  args = ap.parse_args(argv)
  rows = []
  for path in args.runs:
    with open(path) as f:
      rows += [r for r in map(json.loads, f) if 'seed' in r and 'split' in r and not r.get('summary')
             and not r.get('cfg_probe')]
  rows = [r for r in rows if (r['steps'] == args.steps if args.steps else r.get('final', True))]
  if not rows:
    raise SystemExit(f'no per-seed rows{" at " + str(args.steps) + " steps" if args.steps else ""} in {args.runs}.')
  summary = summarize(rows)
  print_tables(summary, rows)
  if args.out:
    with open(args.out, 'a') as f:
      for r in summary:
        f.write(json.dumps(r) + '\n')
    baselines = {k: {'mfd_real_vs_real': real_reference(rows, s)['mfd_real_vs_real']} for k, s in enumerate(SPLITS)}
    plot(summary, baselines, args.out.rsplit('.', 1)[0] + '.png')
  return summary


if __name__ == '__main__':
  main()

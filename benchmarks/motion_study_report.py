"""Scoring and reporting of the motion study (benchmarks/motion_study.py): the Scorer, the plot and the table.

Not a library module: motion_study.py imports it from this folder (after putting the repository on sys.path).
"""

from __future__ import annotations

import numpy as np

from framedit_jax.eval.frechet import frechet_distance_of_features as frechet

LABELS = {'local': 'Local Factorized (Latte)', 'g': 'FrameDiT-G', 'h_concat': 'FrameDiT-H concat',
          'full3d': 'Full 3D (DiT3D)'}
REGIMES = ('steps', 'time')


class Scorer:
  """Features of the real halves A and B once; then every sample set is scored against A."""

  def __init__(self, real, extractor, fvmd_weights=None, fvmd_resolution=256):
    import motion_stats  # pylint: disable=g-import-not-at-top  (benchmarks/motion_stats.py)
    self.i3d = extractor
    self.motion_ex = None
    if fvmd_weights:
      from framedit_jax.eval import motion_extractor  # pylint: disable=g-import-not-at-top
      self.motion_ex = motion_extractor.MotionFeatureExtractor(fvmd_weights, resolution=fvmd_resolution)
    n = len(real) // 2
    self.real_a, self.real_b = real[:n], real[n:2 * n]
    self.feats = {'a': self.features(self.real_a), 'b': self.features(self.real_b)}
    self.motion_real = motion_stats.summary(self.feats['a']['motion'])

  def features(self, clips) -> dict:
    import frame_stats  # pylint: disable=g-import-not-at-top  (benchmarks/frame_stats.py)
    import motion_stats  # pylint: disable=g-import-not-at-top
    from framedit_jax.eval import resize  # pylint: disable=g-import-not-at-top
    out = {'i3d': np.asarray(self.i3d(clips), np.float64), 'motion': motion_stats.features(clips),
           'frame': frame_stats.frame_features(clips)}
    if self.motion_ex is not None:
      u8 = np.round((np.clip(clips, -1, 1) + 1) * 127.5).astype(np.uint8)
      out['fvmd'] = np.concatenate([self.motion_ex(np.stack([resize.square_frames(c[:16], self.motion_ex.resolution)
                                                             for c in u8[i:i + 4]])) for i in range(0, len(u8), 4)])
    return out

  def baseline(self) -> dict:
    a, b = self.feats['a'], self.feats['b']
    res = {'fvd_real_vs_real': frechet(a['i3d'], b['i3d']), 'mfd_real_vs_real': frechet(a['motion'], b['motion']),
           'fcd_real_vs_real': frechet(a['frame'], b['frame'])}
    if 'fvmd' in a:
      res['fvmd_real_vs_real'] = frechet(a['fvmd'], b['fvmd'])
    return res

  def score(self, fake) -> dict:
    import motion_stats  # pylint: disable=g-import-not-at-top
    f, a = self.features(fake), self.feats['a']
    res = {'fvd': frechet(f['i3d'], a['i3d']), 'mfd': frechet(f['motion'], a['motion']),
           'fcd': frechet(f['frame'], a['frame'])}
    if 'fvmd' in f:
      res['fvmd'] = frechet(f['fvmd'], a['fvmd'])
    res.update({f'{k}_samples': v for k, v in motion_stats.summary(f['motion']).items()})
    return res


def plot(rows, baseline, real_motion, path):
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  except ImportError:
    print('(no plot: matplotlib is not installed; pip install -e .[bench])')
    return None
  metrics = [('fvd', 'FVD (I3D) ↓'), ('mfd', 'motion FD (block matching) ↓'), ('fcd', 'per-frame content FD ↓'),
             ('mean_speed_samples', 'mean speed, px/frame')]
  if any('fvmd' in r for r in rows):
    metrics.insert(1, ('fvmd', 'FVMD (PIPs++) ↓'))
  designs = list(dict.fromkeys(r['design'] for r in rows))
  fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6))
  width = 0.38
  for ax, (key, title) in zip(axes, metrics):
    for j, regime in enumerate(REGIMES):
      vals = [next((r[key] for r in rows if r['design'] == d and r['regime'] == regime), np.nan) for d in designs]
      ax.bar(np.arange(len(designs)) + (j - 0.5) * width, vals, width,
             label='equal steps' if regime == 'steps' else 'equal wall-clock')
    ref = real_motion.get('mean_speed') if key == 'mean_speed_samples' else baseline.get(f'{key}_real_vs_real')
    if ref is not None:
      ax.axhline(ref, color='k', ls='--', lw=1, label='real' if key == 'mean_speed_samples' else 'real vs real')
    ax.set_xticks(np.arange(len(designs)))
    ax.set_xticklabels([LABELS[d].replace(' (', '\n(') for d in designs], fontsize=7)
    ax.set_title(title, fontsize=9)
  axes[0].legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def print_table(rows, baseline, real_motion, gt_speed):
  has_fvmd = any('fvmd' in r for r in rows)
  cols = ['design', 'regime', 'steps', 'train min', 'loss', 'FVD'] + (['FVMD'] if has_fvmd else []) + [
      'MFD', 'FCD', 'speed', 'incoherent']
  print('\n| ' + ' | '.join(cols) + ' |')
  print('|' + '---|' * len(cols))
  for r in rows:
    vals = [r['label'], 'equal steps' if r['regime'] == 'steps' else 'equal time', str(r['steps']),
            f'{r["train_s"] / 60:.1f}', f'{r["loss_last20"]:.4f}', f'{r["fvd"]:.1f}'] + (
                [f'{r["fvmd"]:.1f}'] if has_fvmd else []) + [
                    f'{r["mfd"]:.3f}', f'{r["fcd"]:.3f}', f'{r["mean_speed_samples"]:.2f}',
                    f'{r["incoherent_fraction_samples"]:.2f}']
    print('| ' + ' | '.join(vals) + ' |')
  base = ['real vs real', '', '', '', '', f'{baseline["fvd_real_vs_real"]:.1f}'] + (
      [f'{baseline["fvmd_real_vs_real"]:.1f}'] if has_fvmd else []) + [
          f'{baseline["mfd_real_vs_real"]:.3f}', f'{baseline["fcd_real_vs_real"]:.3f}',
          f'{real_motion["mean_speed"]:.2f} (GT {gt_speed:.2f})', f'{real_motion["incoherent_fraction"]:.2f}']
  print('| ' + ' | '.join(base) + ' |\n')

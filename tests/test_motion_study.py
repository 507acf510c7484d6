"""The tracker-free motion statistic (closed forms), the per-frame content features, and a smoke run of
benchmarks/motion_study.py (I3D swapped for a cheap random projection to keep it short)."""

import importlib.util
import json
import math
import os
import sys

import numpy as np
import pytest

from framedit_jax.data.builders import moving_shapes as ms
from benchmarks import frame_stats
from benchmarks import motion_stats

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _texture(seed=0, size=160):
  rng = np.random.default_rng(seed)
  x = rng.uniform(0, 1, (size // 4, size // 4, 3))
  x = np.kron(x, np.ones((4, 4, 1)))  # blocky texture: unambiguous structure at every block
  x = (x + np.roll(x, 1, 0) + np.roll(x, 1, 1) + np.roll(x, (1, 1), (0, 1))) / 4  # soften edges (sub-pixel)
  return x


def _translating(v, frames=8, size=32, seed=0):
  """A crop window moving by -v over a large texture: content translates by v px/frame (x, y)."""
  tex = _texture(seed)
  o = 64
  clip = [tex[o - round(t * v[1]):o - round(t * v[1]) + size, o - round(t * v[0]):o - round(t * v[0]) + size]
          for t in range(frames)]
  return (np.stack(clip) * 255).round().astype(np.uint8)


@pytest.mark.parametrize('v', [(1, 0), (0, -2), (2, 1), (-3, 3), (4, 0)])
def test_translation_gives_its_speed_and_direction(v):
  feats, det = motion_stats.clip_features(_translating(v), return_details=True)
  s = motion_stats.summary(feats[None])
  assert s['mean_speed'] == pytest.approx(math.hypot(*v), abs=0.05)
  assert s['moving_fraction'] > 0.6  # the rest: border blocks whose true match left the frame
  moving = det['moving']
  np.testing.assert_allclose(np.median(det['disp'][moving], axis=0), v, atol=0.05)


def test_static_video_has_zero_motion():
  clip = np.repeat(_translating((0, 0))[:1], 8, axis=0)
  s = motion_stats.summary(motion_stats.clip_features(clip)[None])
  assert s['mean_speed'] == 0.0 and s['moving_fraction'] == 0.0 and s['incoherent_fraction'] == 0.0
  blank = np.zeros((6, 32, 32, 3), np.uint8)
  assert motion_stats.clip_features(blank)[0] == 1.0  # no structure at all: counted as static


def test_mfd_is_zero_on_itself_and_grows_with_speed_mismatch():
  def clips(speed, n=12):
    rng = np.random.default_rng(int(speed * 10))
    out = []
    for i in range(n):
      a = rng.uniform(0, 2 * np.pi)
      out.append(_translating((round(speed * np.cos(a)), round(speed * np.sin(a))), seed=i))
    return motion_stats.features(out)

  ref = clips(2.0)
  assert motion_stats.motion_frechet_distance(ref, ref) == pytest.approx(0.0, abs=1e-6)
  d = [motion_stats.motion_frechet_distance(ref, clips(s)) for s in (2.0, 3.0, 4.0)]
  assert d[0] < d[1] < d[2], d


def test_speed_of_real_moving_shapes_matches_ground_truth():
  cfg = ms.MovingShapes.BUILDER_CONFIGS[0]
  est, gt = [], []
  for i in range(8):
    _, frames, _, vels = ms.make_video(cfg, 'train', i)
    est.append(motion_stats.summary(motion_stats.clip_features(frames[:16])[None])['mean_speed'])
    gt.append(np.linalg.norm(vels[:16], axis=-1).mean())
  assert np.mean(np.abs(np.subtract(est, gt))) < 0.3, (est, gt)
  # shuffling the frames destroys the motion (but not the per-frame content)
  _, frames, _, _ = ms.make_video(cfg, 'train', 0)
  shuffled = frames[:16][np.random.default_rng(0).permutation(16)]
  f = motion_stats.clip_features(frames[:16])
  g = motion_stats.clip_features(shuffled)
  assert g[1] > f[1] or motion_stats.summary(g[None])['mean_speed'] > motion_stats.summary(f[None])['mean_speed']
  np.testing.assert_allclose(np.sort(frame_stats.frame_features(frames[:16]), axis=0),
                             np.sort(frame_stats.frame_features(shuffled), axis=0))


def test_frame_features_closed_forms():
  red = np.zeros((1, 8, 8, 3), np.uint8)
  red[..., 0] = 255
  f = frame_stats.frame_features(red)[0]
  assert f.shape == (frame_stats.FEATURE_DIM,)
  assert f[(3 * 4 + 0) * 4 + 0] == 1.0 and f[:64].sum() == pytest.approx(1.0)  # all pixels in the red bin
  assert f[64] == 1.0  # no gradients
  np.testing.assert_allclose(f[-16:], 0.299)  # thumbnail luminance
  clips = np.random.default_rng(0).uniform(-1, 1, (4, 3, 8, 8, 3))
  assert frame_stats.content_frechet_distance(clips, clips) == pytest.approx(0.0, abs=1e-6)


def _load_study():
  spec = importlib.util.spec_from_file_location('bench_motion_study', os.path.join(ROOT, 'benchmarks',
                                                                                    'motion_study.py'))
  mod = importlib.util.module_from_spec(spec)
  sys.modules[spec.name] = mod
  spec.loader.exec_module(mod)
  return mod


def test_smoke_run_writes_complete_json_lines(tmp_path):
  study = _load_study()
  out = tmp_path / 'ms.jsonl'
  rows, summary = study.main(['--smoke', '--designs', 'local,full3d', '--seeds', '0,1', '--eval-at', '2', '--data-dir',
                              str(tmp_path / 'tfds'), '--out', str(out)])
  lines = [json.loads(l) for l in out.read_text().splitlines()]
  assert lines[0]['header'] and lines[0]['git_commit'] is not None and lines[0]['machine']['cpu_count']
  runs = [l for l in lines if 'seed' in l and not l.get('summary')]
  assert len(runs) == 2 * 2 * 2 * 2 == len(rows)  # designs x seeds x motion splits x (step 2, final step 4)
  assert sorted({r['steps'] for r in runs}) == [2, 4] and all(r['final'] == (r['steps'] == 4) for r in runs)
  per_run = [r for r in runs if r['final']]
  assert {(r['design'], r['seed'], r['split']) for r in per_run} == {
      (d, s, p) for d in ('local', 'full3d') for s in (0, 1) for p in ('small', 'large')}
  for r in per_run:
    for k in ('mfd', 'mfd_real_vs_real', 'mfd_ratio', 'fcd', 'fcd_real_vs_real', 'mean_speed_samples',
              'real_mean_speed', 'gt_mean_speed', 'train_s', 'median_step_s', 'loss_last100', 'sample_s'):
      assert np.isfinite(r[k]), k
    assert r['steps'] == 4 and r['hparams']['num_frames'] == 8 and r['num_samples'] == 2
    assert r['mfd_ratio'] == pytest.approx(r['mfd'] / r['mfd_real_vs_real'])
  # the two splits are scored against their own real clips: the ground-truth speeds are the two classes'
  gt = {r['split']: r['gt_mean_speed'] for r in per_run}
  assert 0.5 <= gt['small'] <= 1.0 and 3.0 <= gt['large'] <= 4.0
  stats = [l for l in lines if l.get('summary')]
  assert len(stats) == 2 * 2 and all(len(s['mfd']['values']) == 2 for s in stats)
  local_small = [r['mfd'] for r in per_run if r['design'] == 'local' and r['split'] == 'small']
  s = next(s for s in stats if s['design'] == 'local' and s['split'] == 'small')
  assert s['mfd']['mean'] == pytest.approx(np.mean(local_small)) and s['mfd']['std'] == pytest.approx(
      np.std(local_small, ddof=1))
  assert len([l for l in lines if l.get('pair')]) == 2 and lines[-1]['footer']
  assert (tmp_path / 'ms.png').exists() and (tmp_path / 'ms_samples.png').exists()
  # re-reading the run at the earlier snapshot summarises those rows (as a merge of runs does)
  from benchmarks import motion_study_report as report  # pylint: disable=g-import-not-at-top
  early = report.main([str(out), '--steps', '2'])
  s2 = next(s for s in early if s.get('summary') and s['design'] == 'local' and s['split'] == 'small')
  assert s2['steps'] == 2 and s2['mfd']['values'] == [r['mfd'] for r in runs if r['design'] == 'local'
                                                      and r['split'] == 'small' and r['steps'] == 2]


def test_pairwise_verdict_needs_the_difference_beyond_the_seed_spread():
  from benchmarks import motion_study_report as report  # pylint: disable=g-import-not-at-top

  def rows(design, mfds):
    return [{'design': design, 'split': 'large', 'seed': i, 'steps': 10, 'median_step_s': 0.1, 'mfd': m,
             'mfd_real_vs_real': 1.0, 'mfd_ratio': m} for i, m in enumerate(mfds)]

  out = report.summarize(rows('local', [5.0, 5.5, 6.0]) + rows('g', [1.0, 1.2, 1.4]) + rows('full3d', [4.0, 6.0, 8.0]))
  pairs = {(p['a'], p['b']): p for p in out if p.get('pair')}
  assert pairs[('local', 'g')]['exceeds_spread'] and pairs[('local', 'g')]['better'] == 'g'
  assert pairs[('local', 'g')]['mfd_diff'] == pytest.approx(5.5 - 1.2)
  assert not pairs[('local', 'full3d')]['exceeds_spread'] and pairs[('local', 'full3d')]['better'] is None
  learned = {s['design']: (s['learned'], s['learned_seeds']) for s in out if s.get('summary')}
  assert learned == {'local': (False, 0), 'g': (True, 3), 'full3d': (False, 0)}


def test_calibration_damages_do_what_they_say():
  """benchmarks/motion_calibration.py: jitter rolls every frame whole, shuffle keeps each clip's frames, edge
  noise touches only outline pixels."""
  from benchmarks import motion_calibration  # pylint: disable=g-import-not-at-top
  cfg = next(c for c in ms.MovingShapes.BUILDER_CONFIGS if c.name == 'motion2')
  clips = np.stack([ms.make_video(cfg, 'test', i)[1][:8] for i in range(4)]).astype(np.float64) / 127.5 - 1.0
  d = motion_calibration.damages(clips, clips[::-1], np.random.default_rng(1))
  assert set(d) >= {'none', 'jitter 1', 'jitter 2', 'shuffle', 'static', 'edge_noise 0.4', 'pixel_noise 0.1'}
  for a in (1, 2):
    for i in range(4):
      for t in range(8):
        frame = d[f'jitter {a}'][i, t]
        assert any(np.array_equal(frame, np.roll(clips[i, t], (dy, dx), (0, 1)))
                   for dy in range(-a, a + 1) for dx in range(-a, a + 1)), (a, i, t)
  for i in range(4):
    got = sorted(map(bytes, d['shuffle'][i].reshape(8, -1).astype(np.float32)))
    assert got == sorted(map(bytes, clips[i].reshape(8, -1).astype(np.float32)))
  changed = np.any(d['edge_noise 0.4'] != clips, axis=-1, keepdims=True)
  edges = motion_calibration.edge_mask(clips)
  assert changed.any() and not np.any(changed & ~edges)


def test_guidance_probe_samples_as_the_configured_sampler(tmp_path):
  """`--cfg-scale 1,s`: the probe's samples at scale s are those of an Experiment configured with
  `sample.cfg_scale = s` (the library's own guided path), differ from the unguided ones, and leave the
  sampler's own scale as it was."""
  import jax  # pylint: disable=g-import-not-at-top
  from framedit_jax.train import experiment as experiment_lib  # pylint: disable=g-import-not-at-top
  study = _load_study()
  args = study.parse_args(['--smoke', '--cfg-scale', '1,2.5', '--data-dir', str(tmp_path)])
  assert study.cfg_scales(args) == [1.0, 2.5]
  with pytest.raises(SystemExit, match='--cfg-scale'):
    study.cfg_scales(study.parse_args(['--cfg-scale', '1,x']))
  tr = study.Trainee('local', study.build_config(args, 'local', 0))
  leaves, tree = jax.tree.flatten(tr.state.params)
  keys = jax.random.split(jax.random.PRNGKey(3), len(leaves))  # away from the zero-initialised output layer
  params = jax.tree.unflatten(tree, [x + 0.3 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)])
  key = jax.random.PRNGKey(11)
  guided = study.sample_class(tr, params, key, 3, 1, 2.5)
  unguided = study.sample_class(tr, params, key, 3, 1, 1.0)
  assert tr.exp.sampler().cfg_scale == 1.0
  config = study.build_config(args, 'local', 0)
  with config.unlocked():
    config.sample.cfg_scale = 2.5
  reference = experiment_lib.Experiment(config).generate(params, jax.random.fold_in(key, 0), 3,
                                                          np.full((3,), 1, np.int32))
  np.testing.assert_allclose(guided, reference, atol=1e-5)
  assert np.abs(guided - unguided).max() > 1e-2

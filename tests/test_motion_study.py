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


def test_smoke_run_writes_complete_json_lines(tmp_path, monkeypatch):
  study = _load_study()
  proj = np.random.default_rng(0).normal(size=(16 * 4 * 4 * 3, 16))

  def cheap_extractor():  # stands in for I3D: a fixed random projection of 4x4-pooled clips
    def ex(videos):
      v = np.asarray(videos, np.float64)
      b, t, h, w, c = v.shape
      pooled = v[:, :16].reshape(b, 16, 4, h // 4, 4, w // 4, c).mean(axis=(3, 5))
      return pooled.reshape(b, -1) @ proj
    return ex

  monkeypatch.setattr(study, 'fvd_extractor', cheap_extractor)
  out = tmp_path / 'ms.jsonl'
  rows = study.main(['--smoke', '--designs', 'local,full3d', '--train-minutes', '0.02', '--data-dir',
                     str(tmp_path / 'tfds'), '--out', str(out)])
  lines = [json.loads(l) for l in out.read_text().splitlines()]
  assert lines[0]['header'] and lines[0]['git_commit'] is not None and lines[0]['machine']['cpu_count']
  assert len(lines) == 1 + 2 * 2 and len(rows) == 4
  assert {(r['design'], r['regime']) for r in lines[1:]} == {(d, g) for d in ('local', 'full3d')
                                                             for g in ('steps', 'time')}
  n = lines[1]['equal_steps_n']
  for r in lines[1:]:
    for k in ('fvd', 'fvd_real_vs_real', 'mfd', 'mfd_real_vs_real', 'fcd', 'fcd_real_vs_real', 'mean_speed_samples',
              'real_mean_speed', 'gt_mean_speed', 'train_s', 'median_step_s', 'loss_last20', 'sample_s'):
      assert np.isfinite(r[k]), k
    assert r['steps'] > 0 and r['hparams']['num_frames'] == 16
    if r['regime'] == 'steps':
      assert r['steps'] == n
    else:  # equal wall-clock: every design used (just over) the same budget of step time
      assert r['train_s'] >= r['budget_s'] and r['train_s'] < r['budget_s'] + 3 * r['median_step_s'] + 0.5
  assert (tmp_path / 'ms.png').exists() and (tmp_path / 'ms_samples.png').exists()

"""FVD protocol plumbing (clip selection, baseline halves) with a cheap closed-form feature extractor."""

import numpy as np
import pytest

from framedit_jax.eval import evaluate
from framedit_jax.eval import frechet
from framedit_jax.eval import fvd


def _feat(videos):
  # Stand-in extractor: per-clip (first-frame index value, mean over frames); exact and cheap.
  v = np.asarray(videos, np.float64)
  return np.stack([v[:, 0, 0, 0, 0], v.mean(axis=(1, 2, 3, 4)), v[:, -1, 0, 0, 1]], axis=1)


def _ramp_videos(lengths):
  # Video k, frame t has value 1000 k + t in channel 0, and its column index in channel 1.
  out = []
  for k, n in enumerate(lengths):
    v = np.zeros((n, 2, 3, 3), np.float32)
    v[..., 0] = 1000 * k + np.arange(n)[:, None, None]
    v[..., 1] = np.arange(3)[None, None, :]
    out.append(v)
  return out


def test_real_clip_selection_is_seeded_strided_and_discards_short():
  videos = _ramp_videos([40, 10, 46, 100])  # need (16-1)*3+1 = 46 frames: video 0 and 1 are too short
  a = list(fvd.sample_real_clips(videos, num_videos=5, stride=3, seed=7))
  b = list(fvd.sample_real_clips(videos, num_videos=5, stride=3, seed=7))
  assert len(a) == 2  # pool = videos 2 and 3
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x, y)
  for c in a:
    t = c[:, 0, 0, 0] % 1000
    np.testing.assert_array_equal(np.diff(t), 3)  # stride 3
    assert c[0, 0, 0, 0] // 1000 in (2, 3) and c.shape[0] == 16
  m = list(fvd.sample_real_clips(videos, num_videos=10, stride=3, mirror=True, seed=0))
  assert len(m) == 4
  assert sorted(c[0, 0, 0, 1] for c in m) == [0, 0, 2, 2]  # two flipped copies (column 0 <-> 2)


def test_fvd_with_baseline_uses_disjoint_halves_of_same_size():
  rng = np.random.default_rng(0)
  fakes = [rng.normal(size=(20, 2, 3, 3)).astype(np.float32) for _ in range(6)]
  reals = [rng.normal(size=(16, 2, 3, 3)).astype(np.float32) + 1 for _ in range(15)]
  res = evaluate.fvd_with_baseline(iter(fakes), iter(reals), _feat, num_videos=5, batch_size=4)
  assert res['num_videos'] == 5 and res['num_real_seen'] == 10
  ff = _feat(np.stack([f[:16] for f in fakes[:5]]))
  ra, rb = _feat(np.stack(reals[:5])), _feat(np.stack(reals[5:10]))
  want = frechet.frechet_distance(ff.mean(0), np.cov(ff, rowvar=False), ra.mean(0), np.cov(ra, rowvar=False))
  base = frechet.frechet_distance(ra.mean(0), np.cov(ra, rowvar=False), rb.mean(0), np.cov(rb, rowvar=False))
  np.testing.assert_allclose(res['fvd'], want, rtol=1e-10)
  np.testing.assert_allclose(res['fvd_real_vs_real'], base, rtol=1e-10)


def test_compute_fvd_and_fvd_from_arrays_agree_with_direct_formula():
  rng = np.random.default_rng(1)
  real = _ramp_videos([50, 60, 70, 80])
  fake = [rng.normal(size=(16, 2, 3, 3)) for _ in range(4)]
  res = fvd.compute_fvd(
      real, fake, _feat, num_videos=4, real_stride=3, seed=3, batch_size=3)
  clips = np.stack(list(fvd.sample_real_clips(real, 4, 16, 3, False, 3)))
  np.testing.assert_allclose(res.fvd, fvd.fvd_from_arrays(clips, np.stack(fake), _feat), rtol=1e-10)
  assert res.real.n == 4 and res.fake.n == 4


def test_short_fakes_are_rejected():
  with pytest.raises(ValueError, match='16'):
    fvd.fake_clip(np.zeros((10, 2, 2, 3)))

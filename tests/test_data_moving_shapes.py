"""The `moving_shapes` builder: determinism, ground truth vs rendered frames, bounces, and the pipeline."""

import ml_collections
import numpy as np
import pytest

from framedit_jax.data import pipeline
from framedit_jax.data.builders import moving_shapes as ms

CONFIGS = {c.name: c for c in ms.MovingShapes.BUILDER_CONFIGS}
CFG = CONFIGS['s32']


def test_deterministic_and_seed_dependent():
  _, f1, c1, _ = ms.make_video(CFG, 'train', 5)
  _, f2, c2, _ = ms.make_video(CFG, 'train', 5)
  _, f3, _, _ = ms.make_video(CFG, 'test', 5)
  np.testing.assert_array_equal(f1, f2)
  np.testing.assert_array_equal(c1, c2)
  assert f1.shape == (64, 32, 32, 3) and f1.dtype == np.uint8
  assert not np.array_equal(f1, f3)


@pytest.mark.parametrize('index', range(6))
def test_centres_are_mask_centroids_and_motion_is_elastic(index):
  spec = ms.video_spec(ms.example_rng(0, 'train', index), 32, 64)
  centers, vels = ms.trajectories(spec)
  _, masks = ms.render(spec, centers)
  ys, xs = np.mgrid[:32, :32] + 0.5  # pixel i covers [i, i + 1)
  for t in range(0, 64, 7):
    for i in range(len(spec.kinds)):
      m = masks[t, i]
      centroid = np.array([(m * xs).sum(), (m * ys).sum()]) / m.sum()
      assert np.abs(centroid - centers[t, i]).max() < 0.5, (t, i, centroid, centers[t, i])
  r = spec.radii[None, :, None]
  assert np.all(centers >= r - 1e-9) and np.all(centers <= 32 - r + 1e-9)  # shapes stay inside the frame
  speed = np.linalg.norm(vels, axis=-1)
  np.testing.assert_allclose(speed, np.broadcast_to(speed[:1], speed.shape), rtol=1e-12)  # |v| kept at bounces
  assert np.all((speed >= 1.0) & (speed <= 4.0))
  # positions advance by the velocity except at a bounce, where that component is reflected
  step = centers[1:] - centers[:-1]
  no_bounce = np.all(np.sign(vels[1:]) == np.sign(vels[:-1]), axis=-1)
  np.testing.assert_allclose(step[no_bounce], vels[:-1][no_bounce], atol=1e-9)


def test_bounce_happens_and_shapes_cross_the_frame():
  travelled, bounces = [], 0
  for i in range(20):
    spec = ms.video_spec(ms.example_rng(0, 'train', i), 32, 64)
    c, v = ms.trajectories(spec)
    travelled.append(np.linalg.norm(c[15] - c[0], axis=-1).max())
    bounces += int(np.any(np.sign(v[1:]) != np.sign(v[:-1])))
  assert bounces >= 15  # most 64-frame videos bounce
  assert np.median(travelled) > 12  # within one 16-frame clip a shape moves across a large part of the frame


def test_built_dataset_through_the_pipeline(tmp_path):
  config = ml_collections.ConfigDict({'seed': 0, 'data': {
      'dataset': 'moving_shapes/tiny', 'data_dir': str(tmp_path), 'manual_dir': None, 'builder_config': None,
      'num_frames': 16, 'frame_interval': 1, 'image_size': 32, 'use_image_num': 0, 'global_batch_size': 2,
      'num_parallel_calls': 1, 'prefetch': 1}})
  builder = pipeline.get_builder(config)
  assert builder.info.splits['train'].num_examples == 16 and builder.info.splits['test'].num_examples == 8
  ex = builder.as_data_source('train')[3]
  tiny = CONFIGS['tiny']
  _, frames, centers, _ = ms.make_video(tiny, 'train', 3)
  video = np.asarray(ex['video'])
  assert video.shape == frames.shape and int(ex['label']) == 0
  assert np.abs(video.astype(int) - frames).mean() < 3  # JPEG q95, 4:4:4
  n = int(ex['num_shapes'])
  np.testing.assert_allclose(np.asarray(ex['centers'])[:, :n], centers, atol=1e-5)
  assert np.all(np.isnan(np.asarray(ex['centers'])[:, n:]))
  # stored centres match the stored (JPEG) frames: single-shape videos, centroid of |frame - background|
  checked = 0
  src = builder.as_data_source('train')
  for i in range(len(src)):
    ex = src[i]
    if int(ex['num_shapes']) != 1:
      continue
    spec, _, _, _ = ms.make_video(tiny, 'train', i)
    bg = ms.background(spec)
    v = np.asarray(ex['video']).astype(float)
    ys, xs = np.mgrid[:32, :32] + 0.5
    for t in (0, 11, 23):
      w = np.abs(v[t] - bg).sum(-1)
      w = np.where(w > 30, w, 0.0)
      c = np.array([(w * xs).sum(), (w * ys).sum()]) / w.sum()
      assert np.abs(c - np.asarray(ex['centers'])[t, 0]).max() < 0.75, (i, t, c)
    checked += 1
  assert checked >= 2
  batch = next(iter(pipeline.make_dataset(config, 'train')))
  assert batch['video'].shape == (2, 16, 32, 32, 3) and batch['video'].min() >= -1 and batch['video'].max() <= 1


def test_motion2_speed_classes_labels_and_single_shape():
  cfg = CONFIGS['motion2']
  assert cfg.size == 16
  for i in range(12):
    spec, frames, centers, vels = ms.make_video(cfg, 'train', i)
    label = ms.speed_class(cfg, i)
    assert label == i % 2 and len(spec.kinds) == 1
    lo, hi = cfg.speed_classes[label]
    speed = np.linalg.norm(vels, axis=-1)
    assert np.all((speed >= lo) & (speed <= hi)), (i, speed[0])
    np.testing.assert_array_equal(spec.background, 0)  # black
    np.testing.assert_array_equal(spec.colors, 255)  # white
    assert frames.max() == 255 and frames.min() == 0
    # the speed class is what the frames show: mean |step| of the centre (no bounce in most frames)
    step = np.linalg.norm(centers[1:] - centers[:-1], axis=-1)
    assert lo - 1e-6 <= np.median(step) <= hi + 1e-6
  with pytest.raises(ValueError, match='max_shapes'):
    ms.video_spec(ms.example_rng(0, 'train', 0), max_shapes=4)


def test_motion3_one_fixed_disc_with_motion2_draws():
  """kind / radius fix the shape; every other draw (speed class, direction, the uniform draw of the start) is the
  one motion2 makes, and the rendered disc covers pi r^2 pixels in every frame (the closed form)."""
  cfg3, cfg2 = CONFIGS['motion3'], CONFIGS['motion2']
  for i in range(8):
    spec3, frames, centers, vels = ms.make_video(cfg3, 'train', i)
    spec2, _, _, vels2 = ms.make_video(cfg2, 'train', i)
    assert spec3.kinds == (ms.KINDS.index('disc'),) and float(spec3.radii[0]) == 2.5
    np.testing.assert_allclose(vels[0], vels2[0])  # the same velocity draw
    # start = U(r, size - r): the same uniform variate under the two radii
    u3 = (spec3.start - 2.5) / (16 - 5.0)
    u2 = (spec2.start - spec2.radii[:, None]) / (16 - 2 * spec2.radii[:, None])
    np.testing.assert_allclose(u3, u2, atol=1e-12)
    area = frames[..., 0].astype(np.float64).sum(axis=(1, 2)) / 255.0
    np.testing.assert_allclose(area, np.pi * 2.5**2, rtol=0.03)
  with pytest.raises(ValueError, match='radius'):
    ms.video_spec(ms.example_rng(0, 'train', 0), size=16, radius=9.0)
  with pytest.raises(ValueError, match='kind'):
    ms.video_spec(ms.example_rng(0, 'train', 0), kind='star')

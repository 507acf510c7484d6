"""make_dataset on synthetic datasets: clip rules, per-clip flip, labels, determinism, resume, host sharding."""

import os
import sys

import ml_collections
import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), 'fixtures', 'data'))
import synthetic as S  # pylint: disable=g-import-not-at-top,wrong-import-position

from framedit_jax.data import pipeline  # pylint: disable=g-import-not-at-top,wrong-import-position
from framedit_jax.data import transforms  # pylint: disable=g-import-not-at-top,wrong-import-position

NF, FI, N_FRAMES = 8, 3, 50
UCF_CLASSES = {0: 'Zebra', 1: 'apple', 2: 'Mango', 3: 'Mango'}  # video id -> class folder


@pytest.fixture(scope='module')
def raw(tmp_path_factory):
  root = tmp_path_factory.mktemp('raw')
  for v in range(4):
    S.write_frames(str(root / 'taichi' / 'train' / f'vid{v}'), v, N_FRAMES)
    S.write_frames(str(root / 'sky' / 'sky_train' / f'vid{v}' / 'c0'), v, N_FRAMES)
    S.write_video(str(root / 'ffs' / f'vid{v}.mp4'), v, N_FRAMES)
    S.write_video(str(root / 'ucf' / 'UCF-101' / UCF_CLASSES[v] / f'v_{UCF_CLASSES[v]}_g0{v}_c01.avi'), v,
                  N_FRAMES, codec='mpeg4')
  S.write_frames(str(root / 'taichi' / 'train' / 'short'), 5, 3)  # skipped at build time
  return root


def make_config(raw, tmp, dataset, **data):
  manual = {'taichi_hd': 'taichi', 'sky_timelapse': 'sky', 'faceforensics': 'ffs', 'ucf101': 'ucf'}[dataset]
  d = dict(dataset=dataset, data_dir=str(tmp / 'tfds'), manual_dir=str(raw / manual), split='train',
           num_frames=NF, frame_interval=FI, image_size=16, use_image_num=0, global_batch_size=4,
           shuffle_buffer=8, num_parallel_calls=2, prefetch=2, use_latents=False)
  d.update(data)
  return ml_collections.ConfigDict({'seed': 0, 'data': d})


@pytest.fixture(scope='module')
def tfds_dir(tmp_path_factory):
  return tmp_path_factory.mktemp('built')


def batches(config, n, **kw):
  it = pipeline.make_dataset(config, 'train', **kw)
  out = [next(it) for _ in range(n)]
  it.close()
  return out


def check_clip_rule(clips, mode):
  window = NF * FI
  for clip in clips:
    ids = S.frame_ids(clip)
    start = ids[0]
    assert 0 <= start <= N_FRAMES - window - 1  # official TemporalRandomCrop range
    if mode == 'stride':
      want = start + FI * np.arange(NF)
    else:
      want = np.linspace(start, start + window - 1, NF).astype(int)
    np.testing.assert_array_equal(ids, want)


def test_taichi_linspace_flip_per_clip(raw, tfds_dir):
  # Official datasets/taichi_datasets.py (video-only): np.linspace(start, end - 1, F, dtype=int), not a stride.
  config = make_config(raw, tfds_dir, 'taichi_hd', global_batch_size=8)
  got = batches(config, 4)
  clips = np.concatenate([b['video'] for b in got])
  assert clips.shape == (32, NF, 16, 16, 3) and clips.dtype == np.float32
  assert clips.min() >= -1.0 and clips.max() <= 1.0
  check_clip_rule(clips, 'linspace')
  flips = np.stack([S.is_flipped(c) for c in clips])  # (clips, T)
  assert np.all(flips == flips[:, :1])  # one decision per clip
  assert 0 < flips[:, 0].sum() < len(clips)  # both happen
  assert set(np.unique(np.concatenate([S.video_ids(c) for c in clips]))) == {0, 1, 2, 3}  # 'short' skipped
  assert all(np.all(b['label'] == 0) for b in got)


def test_sky_never_flips_linspace(raw, tfds_dir):
  clips = np.concatenate([b['video'] for b in batches(make_config(raw, tfds_dir, 'sky_timelapse'), 4)])
  check_clip_rule(clips, 'linspace')  # official datasets/sky_datasets.py
  assert not np.any([S.is_flipped(c) for c in clips])


def test_ffs_linspace(raw, tfds_dir):
  got = batches(make_config(raw, tfds_dir, 'faceforensics'), 6)
  clips = np.concatenate([b['video'] for b in got])
  check_clip_rule(clips, 'linspace')
  flips = np.stack([S.is_flipped(c) for c in clips])
  assert np.all(flips == flips[:, :1]) and 0 < flips[:, 0].sum() < len(clips)


def test_ucf101_labels(raw, tfds_dir):
  got = batches(make_config(raw, tfds_dir, 'ucf101'), 3)
  names = sorted(set(UCF_CLASSES.values()))
  for b in got:
    check_clip_rule(b['video'], 'linspace')
    for clip, label in zip(b['video'], b['label']):
      vid = S.video_ids(clip)[0]
      assert label == names.index(UCF_CLASSES[vid])


def test_same_seed_same_batches_and_resume(raw, tfds_dir):
  config = make_config(raw, tfds_dir, 'taichi_hd')
  ref = batches(config, 5)
  again = batches(config, 5)
  for a, b in zip(ref, again):
    np.testing.assert_array_equal(a['video'], b['video'])
  other = make_config(raw, tfds_dir, 'taichi_hd')
  other.seed = 1
  assert not np.array_equal(batches(other, 1)[0]['video'], ref[0]['video'])
  # Interrupted after 2 batches, state saved, fresh iterator restored: batches 2..4 are identical.
  it = pipeline.make_dataset(config, 'train')
  next(it), next(it)
  state = it.get_state()
  it.close()
  assert state['step'] == 2
  resumed = pipeline.make_dataset(config, 'train')
  resumed.set_state(state)
  for want in ref[2:]:
    np.testing.assert_array_equal(next(resumed)['video'], want['video'])
  resumed.close()


def test_two_processes_disjoint(raw, tfds_dir):
  config = make_config(raw, tfds_dir, 'taichi_hd', global_batch_size=4)
  per_host = [batches(config, 2, process_index=p, process_count=2) for p in range(2)]
  for step in range(2):
    ids = [[S.video_ids(c)[0] for c in per_host[p][step]['video']] for p in range(2)]
    assert len(ids[0]) == len(ids[1]) == 2
    assert not set(ids[0]) & set(ids[1])
    assert sorted(ids[0] + ids[1]) == [0, 1, 2, 3]  # 4 videos, global batch 4: one epoch per step
  single = batches(config, 1)[0]['video']
  np.testing.assert_array_equal(np.concatenate([per_host[0][0]['video'], per_host[1][0]['video']]), single)


@pytest.mark.parametrize('dataset', ['taichi_hd', 'faceforensics'])
def test_joint_image_frames_exact_stride(raw, tfds_dir, dataset):
  # Official datasets/{taichi,ffs}_image_datasets.py slice frames[start:end:frame_interval]: an exact stride.
  config = make_config(raw, tfds_dir, dataset, use_image_num=3)
  b = batches(config, 2)[1]
  assert b['video'].shape == (4, NF + 3, 16, 16, 3)
  np.testing.assert_array_equal(b['label_image'], np.zeros((4, 3), np.int32))
  for clip in b['video']:
    check_clip_rule(clip[None, :NF], 'stride')
    imgs = clip[NF:]
    assert np.all((S.frame_ids(imgs) >= 0) & (S.frame_ids(imgs) < N_FRAMES))
    assert np.all(np.isin(S.video_ids(imgs), [0, 1, 2, 3]))


def test_resize_matches_torch_bilinear():
  import torch
  x = np.random.default_rng(0).integers(0, 256, (2, 17, 23, 3), dtype=np.uint8)
  for out_hw in [(9, 31), (40, 12), (17, 23), (8, 8)]:
    want = torch.nn.functional.interpolate(
        torch.from_numpy(x).permute(0, 3, 1, 2).float(), size=out_hw, mode='bilinear',
        align_corners=False).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(transforms.resize_bilinear(x, *out_hw), want, atol=1e-3)


def test_center_crop_short_side_closed_form():
  x = np.arange(1 * 5 * 8 * 1).reshape(1, 5, 8, 1)
  np.testing.assert_array_equal(transforms.center_crop_short_side(x), x[:, :, 2:7])  # round(1.5) = 2
  np.testing.assert_array_equal(transforms.center_crop_short_side(x.transpose(0, 2, 1, 3)),
                                x.transpose(0, 2, 1, 3)[:, 2:7])


def test_ucf101_image_frames_carry_their_own_labels(raw, tfds_dir):
  # Official datasets/ucf101_image_datasets.py: linspace clip, and every image frame has its own class label
  # (`image_name` -> y_image), not the clip's.
  config = make_config(raw, tfds_dir, 'ucf101', use_image_num=4, global_batch_size=4)
  names = sorted(set(UCF_CLASSES.values()))
  differs = 0
  for b in batches(config, 3):
    assert b['label_image'].shape == (4, 4) and b['label_image'].dtype == np.int32
    for clip, label, image_labels in zip(b['video'], b['label'], b['label_image']):
      check_clip_rule(clip[None, :NF], 'linspace')
      assert label == names.index(UCF_CLASSES[S.video_ids(clip[:1])[0]])
      want = [names.index(UCF_CLASSES[v]) for v in S.video_ids(clip[NF:])]
      np.testing.assert_array_equal(image_labels, want)
      differs += int(np.any(image_labels != label))
  assert differs  # some image frames come from another class than their clip

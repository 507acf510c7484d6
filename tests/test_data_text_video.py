"""text_video_folder builder: captions from .txt / JSON / CSV / prompts.txt, bad or missing ones skipped and counted."""

import json
import os
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

sys.path.insert(0, os.path.join(os.path.dirname(__file__), 'fixtures', 'data'))
import synthetic as S  # pylint: disable=g-import-not-at-top,wrong-import-position

from framedit_jax.data import builders  # pylint: disable=g-import-not-at-top,wrong-import-position
from framedit_jax.data.builders import captions  # pylint: disable=g-import-not-at-top,wrong-import-position


def _build(raw, data_dir):
  b = builders.TextVideoFolder(config='s64', data_dir=str(data_dir), file_format='array_record')
  b.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(raw)))
  return b


def test_captions_from_txt_and_manifest_with_skips(tmp_path):
  raw = tmp_path / 'raw'
  for i, name in enumerate(['a.mp4', 'b.mp4', 'sub/c.mp4', 'd.mp4', 'e.mp4', 'f.mp4']):
    S.write_video(str(raw / name), i, 20)
  (raw / 'a.txt').write_text('  A red   ball\nbounces. ')
  (raw / 'b.txt').write_text('   ')  # bad: empty
  (raw / 'captions.json').write_text(json.dumps([{'path': 'sub/c.mp4', 'caption': 'a green square'},
                                                 {'videoid': 'd', 'name': 'WebVid style'},
                                                 {'path': 'e.mp4', 'caption': None}]))  # e: bad
  # f.mp4: no caption anywhere
  b = _build(raw, tmp_path / 'tfds')
  assert b.info.metadata['skipped_captions']['train'] == {'no_caption': 1, 'bad_caption': 2}
  ds = b.as_data_source('train')
  got = {ds[i]['path'].decode(): ds[i]['caption'].decode() for i in range(len(ds))}
  assert got == {'a.mp4': 'A red ball bounces.', os.path.join('sub', 'c.mp4'): 'a green square',
                 'd.mp4': 'WebVid style'}
  ex = ds[0]
  assert np.stack(ex['video']).shape[0] == 20


def test_csv_and_prompt_list_manifests(tmp_path):
  (tmp_path / 'captions.csv').write_text('videoid,name,page_dir\nv1,"a cat, sleeping",x\nv2,,x\n')
  table = captions.load_manifest(str(tmp_path))
  assert captions.find_caption(str(tmp_path), 'v1.mp4', table) == ('a cat, sleeping', '')
  assert captions.find_caption(str(tmp_path), 'v2.mp4', table) == (None, 'bad_caption')
  assert captions.find_caption(str(tmp_path), 'v3.mp4', table) == (None, 'no_caption')
  other = tmp_path / 'pairs'
  other.mkdir()
  (other / 'videos.txt').write_text('clips/1.mp4\nclips/2.mp4\n')
  (other / 'prompts.txt').write_text('first\nsecond\n')
  assert captions.find_caption(str(other), 'clips/2.mp4', captions.load_manifest(str(other)))[0] == 'second'
  (other / 'prompts.txt').write_text('only one\n')
  with pytest.raises(ValueError, match='pair up'):
    captions.load_manifest(str(other))
  (tmp_path / 'captions.csv').write_text('a,b\n1,2\n')
  with pytest.raises(ValueError, match='captions.csv: header'):
    captions.load_manifest(str(tmp_path))

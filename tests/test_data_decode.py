"""read_video_file skip rules: keep what decodes cleanly (warn about the declared count), 'truncated' only for
a cut file, 'corrupt' for garbage. Reference: the synthetic source frames (tests/fixtures/data/synthetic.py)."""

import os
import struct
import sys

from absl import logging
import av
import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), 'fixtures', 'data'))
import synthetic as S  # pylint: disable=g-import-not-at-top,wrong-import-position

from framedit_jax.data import decode  # pylint: disable=g-import-not-at-top,wrong-import-position


def _declare_frames(path, n):
  """Patches an avi's header (avih dwTotalFrames, strh dwLength) to declare n frames."""
  with open(path, 'rb') as f:
    data = bytearray(f.read())
  data[48:52] = struct.pack('<I', n)
  i = data.find(b'strh') + 8
  data[i + 32:i + 36] = struct.pack('<I', n)
  with open(path, 'wb') as f:
    f.write(bytes(data))


def test_avi_declaring_more_frames_than_it_holds_is_kept(tmp_path, monkeypatch):
  path = str(tmp_path / 'v_Test_g01_c01.avi')
  S.write_video(path, 1, 40, codec='mpeg4')
  _declare_frames(path, 444)
  with av.open(path) as c:
    assert c.streams.video[0].frames == 444  # the container really declares 444
  warnings = []
  monkeypatch.setattr(logging, 'warning', lambda msg, *a: warnings.append(msg % a))
  video = decode.read_video_file(path, min_frames=20)
  assert video.num_source_frames == 40
  want = np.stack([S.frame(1, i) for i in range(40)]).astype(int)
  assert np.abs(np.stack(video.frames).astype(int) - want).mean() < 3
  assert len(warnings) == 1 and '444' in warnings[0]
  with pytest.raises(decode.SkipVideo) as err:  # but not when fewer than min_frames decode
    decode.read_video_file(path, min_frames=48)
  assert err.value.reason == 'too_short'


def test_cut_mp4_is_truncated_not_corrupt(tmp_path):
  path = str(tmp_path / 'fast.mp4')
  with av.open(path, 'w', options={'movflags': 'faststart'}) as c:  # index first: the cut hits the frames
    s = c.add_stream('libx264', rate=25)
    s.width, s.height, s.pix_fmt, s.options = S.W, S.H, 'yuv420p', {'crf': '0'}
    for i in range(40):
      for p in s.encode(av.VideoFrame.from_ndarray(S.frame(2, i), format='rgb24')):
        c.mux(p)
    for p in s.encode():
      c.mux(p)
  with open(path, 'rb') as f:
    data = f.read()
  for keep in (0.2, 0.3):
    cut = str(tmp_path / f'cut{keep}.mp4')
    with open(cut, 'wb') as f:
      f.write(data[:int(len(data) * keep)])
    with pytest.raises(decode.SkipVideo) as err:
      decode.read_video_file(cut, min_frames=5)
    assert err.value.reason == 'truncated', err.value
  garbage = str(tmp_path / 'garbage.mp4')
  S.write_garbage(garbage)
  with pytest.raises(decode.SkipVideo) as err:
    decode.read_video_file(garbage)
  assert err.value.reason == 'corrupt'

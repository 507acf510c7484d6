"""Build-time readers: video files (PyAV) and per-video frame folders.

Both readers return every frame of one video as RGB uint8 arrays, optionally resized so that the short side
is `short_side` pixels, or raise `SkipVideo` with a reason code. The TFDS builders count skipped videos per
reason and write the counts into the build log and the dataset metadata.

Reason codes: 'empty' (zero-length file), 'corrupt' (not a recognisable container, or no frame in a file
that declares none), 'truncated' (a recognised container that cannot be opened or whose decoding fails
mid-file: the file was cut), 'unreadable_codec' (no decoder for the stream's codec), 'no_video_stream',
'too_short' (fewer than `min_frames` frames decode).

A video that decodes cleanly is kept whenever at least `min_frames` frames decode, even if its container
declares more (common in UCF-101 AVIs: e.g. 444 declared, 68 decodable); a warning names the declared count.

Source of the rules: official datasets/{taichi,sky,ucf101,ffs}_datasets.py (which crash or silently
drop on such files; here they are skipped and counted).
"""

import dataclasses
import io
import os
import re

from absl import logging
import av
import numpy as np
from PIL import Image

VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mov', '.webm', '.mkv', '.m4v')
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')
SKIP_REASONS = ('empty', 'corrupt', 'truncated', 'unreadable_codec', 'no_video_stream', 'too_short')


class SkipVideo(Exception):
  """Raised when a video must be skipped; `reason` is one of SKIP_REASONS."""

  def __init__(self, reason, detail=''):
    super().__init__(f'{reason}: {detail}')
    self.reason = reason
    self.detail = detail


@dataclasses.dataclass
class DecodedVideo:
  """All frames of one video. frames: list of (H, W, 3) uint8 arrays or encoded-jpeg bytes."""
  frames: list
  fps: float
  num_source_frames: int
  height: int
  width: int


def resized_hw(h, w, short_side):
  """(H, W) after scaling the short side to `short_side` (None or >= short side: unchanged)."""
  if not short_side or min(h, w) <= short_side:
    return h, w
  if h <= w:
    return short_side, max(1, int(round(w * short_side / h)))
  return max(1, int(round(h * short_side / w))), short_side


def _resize(img, short_side):
  h, w = img.height, img.width
  nh, nw = resized_hw(h, w, short_side)
  if (nh, nw) == (h, w):
    return img
  return img.resize((nw, nh), Image.BICUBIC, reducing_gap=None)


def frame_sort_key(name):
  """Sort key for frame file names: the last integer in the stem ('img_0012.png' -> 12), then the name."""
  stem = os.path.splitext(name)[0]
  nums = re.findall(r'\d+', stem)
  return (int(nums[-1]) if nums else -1, name)


def list_frame_files(folder):
  """Sorted image file names directly inside `folder` (official sky/taichi ordering: trailing integer)."""
  names = [n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS)]
  return sorted(names, key=frame_sort_key)


def _has_container_header(path):
  """True when the file starts like an mp4/mov, avi or mkv/webm container."""
  with open(path, 'rb') as f:
    head = f.read(12)
  return (head[4:8] == b'ftyp' or (head[:4] == b'RIFF' and head[8:12] == b'AVI ')
          or head[:4] == b'\x1a\x45\xdf\xa3')


def _riff_truncated(path):
  """True when an avi's RIFF header declares more bytes than the file holds."""
  with open(path, 'rb') as f:
    head = f.read(12)
  if head[:4] != b'RIFF' or head[8:12] != b'AVI ':
    return False
  return int.from_bytes(head[4:8], 'little') + 8 > os.path.getsize(path)


def read_video_file(path, short_side=None, min_frames=1):
  """Decodes all frames of a video file with PyAV.

  Args:
    path: mp4/avi/mov/webm file.
    short_side: resize so the short side is this many pixels (bicubic); None keeps the resolution.
    min_frames: fewer decoded frames raises SkipVideo('too_short').
  Returns:
    DecodedVideo with frames as (H, W, 3) uint8 arrays.
  Raises:
    SkipVideo: with a reason from SKIP_REASONS.
  """
  if os.path.getsize(path) == 0:
    raise SkipVideo('empty', path)
  try:
    container = av.open(path)
  except (av.error.FFmpegError, OSError, UnicodeDecodeError) as e:
    # A recognised container header that fails to open means the file was cut (e.g. mp4 without its moov).
    reason = 'truncated' if _has_container_header(path) else 'corrupt'
    raise SkipVideo(reason, f'{path}: {e}') from e
  with container:
    if not container.streams.video:
      raise SkipVideo('no_video_stream', path)
    stream = container.streams.video[0]
    stream.thread_type = 'AUTO'
    declared = int(stream.frames or 0)
    try:
      codec_ok = stream.codec_context is not None and stream.codec_context.codec is not None
    except (av.error.FFmpegError, ValueError) as e:
      raise SkipVideo('unreadable_codec', f'{path}: {e}') from e
    if not codec_ok:
      raise SkipVideo('unreadable_codec', path)
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else 0.0
    frames = []
    try:
      for frame in container.decode(stream):
        frames.append(np.asarray(_resize(frame.to_image(), short_side)))
    except av.error.DecoderNotFoundError as e:
      raise SkipVideo('unreadable_codec', f'{path}: {e}') from e
    except av.error.FFmpegError as e:  # a decode error mid-file: the file was cut (or is garbage)
      reason = 'truncated' if _has_container_header(path) else 'corrupt'
      raise SkipVideo(reason, f'{path}: decoding failed after {len(frames)} frames: {e}') from e
  if not frames:
    reason = 'truncated' if declared and _has_container_header(path) else 'corrupt'
    raise SkipVideo(reason, f'{path}: no decodable frame of {declared} declared')
  if len(frames) < min_frames:
    raise SkipVideo('too_short', f'{path}: {len(frames)} frames < {min_frames}')
  if (declared and len(frames) < declared - 2) or _riff_truncated(path):
    logging.warning('%s: the container declares %d frames (%s) but %d decode cleanly; keeping those %d.',
                    path, declared, 'file shorter than its RIFF size' if _riff_truncated(path) else 'header',
                    len(frames), len(frames))
  h, w = frames[0].shape[:2]
  return DecodedVideo(frames, fps, len(frames), h, w)


def read_frame_folder(folder, short_side=None, min_frames=1, fps=0.0):
  """Reads a per-video frame folder (official Taichi/Sky layout).

  JPEG frames that need no resizing are passed through as their original bytes (no re-encoding).

  Args:
    folder: directory with one image file per frame, ordered by the trailing integer of the name.
    short_side, min_frames: as in `read_video_file`.
    fps: frame rate to record (frame folders carry none).
  Returns:
    DecodedVideo with frames as uint8 arrays or jpeg bytes.
  Raises:
    SkipVideo: 'too_short', 'empty' (zero-length image) or 'corrupt' (an image fails to decode).
  """
  names = list_frame_files(folder)
  if len(names) < min_frames:
    raise SkipVideo('too_short', f'{folder}: {len(names)} frames < {min_frames}')
  frames = []
  hw = None
  for name in names:
    path = os.path.join(folder, name)
    with open(path, 'rb') as f:
      data = f.read()
    if not data:
      raise SkipVideo('empty', path)
    try:
      img = Image.open(io.BytesIO(data))
      img.load()
    except Exception as e:  # PIL raises many types for bad files.  pylint: disable=broad-except
      raise SkipVideo('corrupt', f'{path}: {e}') from e
    if hw is None:
      hw = (img.height, img.width)
    if (img.height, img.width) != hw:
      raise SkipVideo('corrupt', f'{path}: frame size {(img.height, img.width)} differs from {hw}')
    if img.format == 'JPEG' and img.mode == 'RGB' and resized_hw(*hw, short_side) == hw:
      frames.append(data)
    else:
      frames.append(np.asarray(_resize(img.convert('RGB'), short_side)))
  h, w = resized_hw(*hw, short_side)
  return DecodedVideo(frames, fps, len(names), h, w)


def encode_jpeg(frame, quality=95):
  """(H, W, 3) uint8 -> JPEG bytes (PIL, 4:4:4 chroma so colour is kept at full resolution)."""
  if isinstance(frame, bytes):
    return frame
  buf = io.BytesIO()
  Image.fromarray(frame).save(buf, format='JPEG', quality=quality, subsampling=0)
  return buf.getvalue()


def decode_jpeg(data):
  """JPEG/PNG bytes -> (H, W, 3) uint8 (PIL)."""
  img = Image.open(io.BytesIO(data))
  if img.mode != 'RGB':
    img = img.convert('RGB')
  return np.asarray(img)

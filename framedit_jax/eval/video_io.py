"""Reading mp4 folders for evaluation (PyAV): lazy (T, H, W, 3) uint8 videos."""

from __future__ import annotations

import os

import av
import numpy as np

VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mov', '.mkv', '.webm')


def list_videos(folder: str) -> list[str]:
  """Sorted video paths in ``folder``.

  Raises:
    FileNotFoundError: if the folder is missing or holds no video file.
  """
  if not os.path.isdir(folder):
    raise FileNotFoundError(f'video folder {folder} does not exist.')
  paths = sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.lower().endswith(VIDEO_EXTENSIONS))
  if not paths:
    raise FileNotFoundError(f'no {"/".join(VIDEO_EXTENSIONS)} files in {folder}.')
  return paths


def read_video(path: str, max_frames: int | None = None) -> np.ndarray:
  """Decodes ``path`` into (T, H, W, 3) uint8 RGB (at most ``max_frames`` frames)."""
  frames = []
  with av.open(path) as c:
    for f in c.decode(video=0):
      frames.append(f.to_ndarray(format='rgb24'))
      if max_frames is not None and len(frames) >= max_frames:
        break
  if not frames:
    raise ValueError(f'{path} has no decodable video frames.')
  return np.stack(frames)


class LazyVideo:
  """A video file that decodes on ``np.asarray``; ``len`` is its frame count (decoded once if unknown)."""

  def __init__(self, path: str):
    self.path = path
    with av.open(path) as c:
      n = c.streams.video[0].frames
    self._len = int(n) if n else None

  def __len__(self):
    if self._len is None:
      self._len = len(read_video(self.path))
    return self._len

  def __array__(self, dtype=None, copy=None):
    v = read_video(self.path)
    return v if dtype is None else v.astype(dtype)


def lazy_folder(folder: str) -> list[LazyVideo]:
  return [LazyVideo(p) for p in list_videos(folder)]

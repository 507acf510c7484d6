"""The clip recipe: which frames of which video a stream position becomes (pure; no I/O).

Used by both batch iterators (JPEG-frame records in `framedit_jax.data.pipeline`, the latent cache in
`framedit_jax.vae.latent_cache`), so one config selects the same clips in pixel and latent space.

    (seed, step, process) -> stream positions  (`positions`)
    position -> (video index, frame indices, flip, image frames, labels)  (`ClipRecipe.plan`)

Rules (official `datasets/` of minhkhoale/FrameDiT):
  * window start: `TemporalRandomCrop(num_frames * frame_interval)`, uniform in
    [0, max(0, total - window - 1)] (`datasets/video_transforms.py`).
  * frame indices: video-only loaders (`<name>_datasets.py`) take
    `np.linspace(start, end - 1, num_frames, dtype=int)`, end = min(start + window, total) ('linspace');
    the image-joint loaders of taichi / sky / ffs (`<name>_image_datasets.py`) slice
    `frames[start:end:frame_interval]`, an exact stride ('stride'); `ucf101_image_datasets.py` keeps linspace.
  * image-joint frames: `use_image_num` single frames of random videos, each with its own flip and (UCF101)
    its own class label (`y_image`, official `ucf101_image_datasets.py` `image_name`).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import numpy as np

from framedit_jax.data.transforms import SPATIAL_MODES

TEMPORAL_MODES = ('stride', 'linspace')


class Rule(NamedTuple):
  """Per-dataset rule: default TFDS builder config, spatial mode, random flip, labelled, temporal mode of the
  image-joint loader (video-only loaders are always 'linspace')."""
  builder_config: str
  spatial: str
  flip: bool
  labelled: bool
  image_joint_temporal: str


DATASET_RULES = {
    'sample_videos': Rule('s64', 'crop_resize', True, False, 'stride'),
    'moving_shapes': Rule('s32', 'crop_resize', False, True, 'stride'),  # generated; no flip (keeps GT centres); label: the speed class (motion2) or 0
    'taichi_hd': Rule('full', 'crop_resize', True, False, 'stride'),
    'sky_timelapse': Rule('full', 'crop_resize', False, False, 'stride'),
    'faceforensics': Rule('full', 'squash', True, False, 'stride'),
    'ucf101': Rule('full', 'squash', True, True, 'linspace'),
    'ucf101_videos': Rule('full', 'squash', True, True, 'linspace'),
    'video_folder': Rule('full', 'crop_resize', True, False, 'stride'),
    'text_video_folder': Rule('s256', 'crop_resize', True, False, 'stride'),  # captions; official T2V: random flip
}


def dataset_rule(dataset: str) -> Rule:
  """The rule of `data.dataset` ('name' or 'name/builder_config'). Raises ValueError for unknown names."""
  name = dataset.split('/')[0]
  if name not in DATASET_RULES:
    raise ValueError(f'data.dataset={dataset!r}: use one of {sorted(DATASET_RULES)} (optionally /<config>)')
  return DATASET_RULES[name]


def window_start(rng: np.random.Generator, total_frames: int, window: int) -> int:
  """Uniform start in [0, max(0, total_frames - window - 1)] (official TemporalRandomCrop)."""
  rand_end = max(0, total_frames - window - 1)
  return int(rng.integers(0, rand_end + 1))


def clip_indices(start: int, total_frames: int, num_frames: int, frame_interval: int, mode: str) -> np.ndarray:
  """Frame indices of one clip, (num_frames,) int64, clamped to the video (short videos repeat the last frame).

  Args:
    start: first frame of the window (from `window_start`).
    total_frames: frames in the video.
    num_frames, frame_interval: clip length and temporal stride; the window is num_frames * frame_interval.
    mode: 'stride' (start + k * frame_interval) or 'linspace' (linspace(start, end - 1, num_frames), end =
      min(start + window, total_frames), truncated to int as `np.linspace(..., dtype=int)`).
  Raises:
    ValueError: unknown mode.
  """
  if mode == 'stride':
    idx = start + frame_interval * np.arange(num_frames, dtype=np.int64)
  elif mode == 'linspace':
    end = min(start + num_frames * frame_interval, total_frames)
    idx = np.linspace(start, end - 1, num_frames).astype(np.int64)
  else:
    raise ValueError(f'data.temporal_mode={mode!r}: use one of {TEMPORAL_MODES}')
  return np.clip(idx, 0, total_frames - 1)


def example_rng(seed: int, stream: int, position: int) -> np.random.Generator:
  """Independent generator for stream position `position` (pure function of its arguments)."""
  return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, stream, int(position)]))


def epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
  """Order of the n examples in epoch `epoch` (pure function of seed and epoch)."""
  return example_rng(seed, 1, epoch).permutation(n)


def positions(step: int, global_batch: int, process_index: int, process_count: int) -> list[int]:
  """Stream positions of process `process_index`'s examples in global batch `step`.

  Batch `step` covers [step * G, (step + 1) * G); process p takes [step * G + p * B, step * G + (p + 1) * B),
  B = G // process_count, so processes never share an example within a step.
  """
  local = global_batch // process_count
  first = step * global_batch + process_index * local
  return list(range(first, first + local))


class ClipPlan(NamedTuple):
  """What one stream position reads: video `video`, frames `frames` (int64 (num_frames,)), mirrored if
  `flip`; `images` = ((video, frame, flip), ...) for the use_image_num image-joint frames."""
  video: int
  frames: np.ndarray
  flip: bool
  images: tuple[tuple[int, int, bool], ...]


@dataclasses.dataclass(frozen=True)
class ClipRecipe:
  """The clip rules of one config (`from_config`). Pure: `plan` does no I/O."""
  num_frames: int
  frame_interval: int
  image_size: int
  use_image_num: int
  temporal: str
  spatial: str
  flip: bool
  labelled: bool

  @classmethod
  def from_config(cls, config) -> 'ClipRecipe':
    """Reads `config.data.{dataset, num_frames, frame_interval, image_size, use_image_num}` and the optional
    overrides `data.{temporal_mode, spatial_mode, random_flip, label_subfolders}` (None = the dataset rule).

    Raises:
      ValueError: unknown dataset, temporal_mode or spatial_mode (one line naming the field).
    """
    d = config.data
    rule = dataset_rule(d.dataset)
    use_image_num = int(d.get('use_image_num', 0) or 0)
    temporal = d.get('temporal_mode', None) or (rule.image_joint_temporal if use_image_num else 'linspace')
    spatial = d.get('spatial_mode', None) or rule.spatial
    rf = d.get('random_flip', None)
    if temporal not in TEMPORAL_MODES:
      raise ValueError(f'data.temporal_mode={temporal!r}: use one of {TEMPORAL_MODES}')
    if spatial not in SPATIAL_MODES:
      raise ValueError(f'data.spatial_mode={spatial!r}: use one of {SPATIAL_MODES}')
    return cls(num_frames=int(d.num_frames), frame_interval=int(d.frame_interval),
               image_size=int(d.image_size), use_image_num=use_image_num, temporal=temporal, spatial=spatial,
               flip=bool(rule.flip if rf is None else rf),
               labelled=rule.labelled or bool(d.get('label_subfolders', False)))

  def plan(self, seed: int, position: int, video: int, num_videos: int,
           length: Callable[[int], int]) -> ClipPlan:
    """The clip of stream position `position`, whose video index is `video` (see `epoch_index`).

    Args:
      seed: config.seed.
      position: stream position; all randomness comes from `example_rng(seed, 0, position)`.
      video: index of the clip's video in [0, num_videos).
      num_videos: videos in the split (image-joint frames are drawn from all of them).
      length: video index -> number of frames.
    """
    rng = example_rng(seed, 0, position)
    n = int(length(video))
    start = window_start(rng, n, self.num_frames * self.frame_interval)
    frames = clip_indices(start, n, self.num_frames, self.frame_interval, self.temporal)
    flip = self.flip and rng.random() < 0.5
    images = []
    for _ in range(self.use_image_num):
      other = int(rng.integers(num_videos))
      f = int(rng.integers(int(length(other))))
      images.append((other, f, bool(self.flip and rng.random() < 0.5)))
    return ClipPlan(int(video), frames, bool(flip), tuple(images))


class EpochOrder:
  """Stream position -> video index: epoch e visits the n videos in `epoch_permutation(seed, e)` order.

  Caches the last two permutations; not thread-safe (guard with a lock when shared by threads).
  """

  def __init__(self, seed: int, n: int):
    self.seed, self.n = int(seed), int(n)
    self._cache: dict[int, np.ndarray] = {}

  def __call__(self, position: int) -> int:
    epoch, i = divmod(int(position), self.n)
    perm = self._cache.get(epoch)
    if perm is None:
      perm = epoch_permutation(self.seed, epoch, self.n)
      self._cache = {e: p for e, p in self._cache.items() if e >= epoch - 1}
      self._cache[epoch] = perm
    return int(perm[i])

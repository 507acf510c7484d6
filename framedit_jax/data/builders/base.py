"""Shared TFDS builder for video datasets stored as per-frame JPEG (`tfds.features.Video`).

Every builder in this package:
  * reads raw videos (files decoded with PyAV, or per-video frame folders) from `manual_dir`,
  * stores every frame as JPEG, at the original resolution or with the short side resized (builder config),
  * records `fps`, `num_frames`, the source `path` (relative to manual_dir) and a `label`,
  * skips bad videos with a warning, counted per reason (decode.SKIP_REASONS) in the log and in
    `info.metadata['skipped'][split]`,
  * writes examples in generation order (`disable_shuffling`): example i of a split is the i-th kept video in
    sorted path order, so index lists saved in the metadata (e.g. UCF101 folds) address examples directly.

Subclasses implement `_find_videos(manual_dir) -> {split: [VideoSource, ...]}`, `MANUAL_DOWNLOAD_INSTRUCTIONS`
and optionally `_label_names(manual_dir)`.
"""

import collections
import dataclasses
import io
import json
import os

from absl import logging
import numpy as np
import tensorflow_datasets as tfds

from framedit_jax.data import decode

DEFAULT_MIN_FRAMES = 48  # official num_frames 16 x frame_interval 3


@dataclasses.dataclass(frozen=True)
class VideoSource:
  """One raw video: a file or a frame folder, with its class label (0 when unlabelled)."""
  path: str  # absolute path
  rel_path: str  # path relative to manual_dir (stored in the example)
  label: int = 0
  frame_range: tuple = ()  # (start, stop) to keep part of a frame folder (Sky chunks); () = all


@dataclasses.dataclass
class VideoBuilderConfig(tfds.core.BuilderConfig):
  """short_side: resize the stored frames so the short side has this many pixels (None = original).

  min_frames: videos with fewer frames are skipped as 'too_short'.
  """
  short_side: int | None = None
  min_frames: int = DEFAULT_MIN_FRAMES
  jpeg_quality: int = 95


def standard_configs(min_frames=DEFAULT_MIN_FRAMES):
  return [
      VideoBuilderConfig(name='full', description='Original resolution.', min_frames=min_frames),
      VideoBuilderConfig(name='s256', description='Short side 256.', short_side=256, min_frames=min_frames),
      VideoBuilderConfig(name='s128', description='Short side 128.', short_side=128, min_frames=min_frames),
      VideoBuilderConfig(name='s64', description='Short side 64.', short_side=64, min_frames=min_frames),
  ]


class VideoBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base class; see the module docstring."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  BUILDER_CONFIGS = standard_configs()
  DEFAULT_FPS = 0.0  # recorded for frame folders, which carry no frame rate
  NEEDS_MANUAL_DIR = True  # False: builds without data.manual_dir (embedded or generated videos)
  # No downloads: skip TFDS's checksum-file lookup (which needs `importlib_resources` on Python >= 3.9).
  url_infos = None

  def _info(self):
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            'video': tfds.features.Video(shape=(None, None, None, 3), encoding_format='jpeg'),
            'label': np.int32,  # class index; names in info.metadata['label_names']
            'fps': np.float32,
            'num_frames': np.int32,
            'path': tfds.features.Text(),
        }),
        metadata=tfds.core.MetadataDict(),
        disable_shuffling=True,
    )

  def _label_names(self, manual_dir):  # pylint: disable=unused-argument
    """Sorted class names (label i = names[i]); None for unlabelled datasets."""
    return None

  def _find_videos(self, manual_dir):
    raise NotImplementedError

  def _split_generators(self, dl_manager):
    manual_dir = os.fspath(dl_manager.manual_dir)
    splits = self._find_videos(manual_dir)
    self.info.metadata['skipped'] = {}
    self.info.metadata['manual_dir'] = manual_dir
    self.info.metadata['label_names'] = self._label_names(manual_dir) or []
    self._extra_metadata(manual_dir, splits)
    return {name: self._generate_examples(name, sources) for name, sources in splits.items()}

  def _extra_metadata(self, manual_dir, splits):
    pass

  def _generate_examples(self, split, sources):
    cfg = self.builder_config
    counts = collections.Counter()
    kept_paths = []
    key = 0
    for src in sources:
      try:
        if os.path.isdir(src.path):
          video = decode.read_frame_folder(src.path, cfg.short_side, 1, fps=self.DEFAULT_FPS)
          if src.frame_range:
            video.frames = video.frames[src.frame_range[0]:src.frame_range[1]]
            video.num_source_frames = len(video.frames)
          if len(video.frames) < cfg.min_frames:
            raise decode.SkipVideo('too_short', f'{src.path}: {len(video.frames)} frames < {cfg.min_frames}')
        else:
          video = decode.read_video_file(src.path, cfg.short_side, cfg.min_frames)
      except decode.SkipVideo as e:
        counts[e.reason] += 1
        logging.warning('Skipping video (%s): %s', e.reason, e.detail)
        continue
      frames = [io.BytesIO(decode.encode_jpeg(f, cfg.jpeg_quality)) for f in video.frames]
      kept_paths.append(src.rel_path)
      yield key, {
          'video': frames,
          'label': src.label,
          'fps': np.float32(video.fps),
          'num_frames': np.int32(len(frames)),
          'path': src.rel_path,
      }
      key += 1
    skipped = {r: int(counts.get(r, 0)) for r in decode.SKIP_REASONS}
    self.info.metadata['skipped'][split] = skipped
    self.info.metadata.setdefault('paths', {})[split] = kept_paths
    logging.info('%s/%s: kept %d videos, skipped %s', self.name, split, key, json.dumps(skipped))

"""`text_video_folder`: videos with captions (Pexels / WebVid style) for text-to-video training.

Videos are found like `video_folder` (any tree of mp4/avi/mov/webm/mkv or frame folders under manual_dir, optional
train/ and test/ splits); captions come from `captions.py` (same-name .txt, captions.json/.csv manifest, or
videos.txt + prompts.txt). Each example adds a `caption` text feature. Videos without a usable caption are
skipped before decoding and counted in `info.metadata['skipped_captions'][split]` ({'no_caption', 'bad_caption'})
and in the log; unreadable videos are counted as in every builder (`info.metadata['skipped']`).
"""

import collections
import json
import os

from absl import logging
import numpy as np
import tensorflow_datasets as tfds

from framedit_jax.data.builders import base
from framedit_jax.data.builders import captions
from framedit_jax.data.builders import scan


class TextVideoFolder(base.VideoBuilder):
  """A user folder of captioned videos."""

  BUILDER_CONFIGS = base.standard_configs(min_frames=16)  # official T2V: 16 frames at interval 1
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      'Put videos (mp4/avi/mov/webm or frame folders) in manual_dir, each with a same-name .txt caption, or add '
      'captions.json / captions.csv (path + caption columns) or videos.txt + prompts.txt at its root.')

  def _info(self):
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            'video': tfds.features.Video(shape=(None, None, None, 3), encoding_format='jpeg'),
            'caption': tfds.features.Text(),
            'label': np.int32,
            'fps': np.float32,
            'num_frames': np.int32,
            'path': tfds.features.Text(),
        }),
        metadata=tfds.core.MetadataDict(),
        disable_shuffling=True,
    )

  def _find_videos(self, manual_dir):
    roots = scan.split_roots(manual_dir)
    return {split: scan.find_sources(root, []) for split, root in roots.items()}

  def _extra_metadata(self, manual_dir, splits):
    self._manual_dir = manual_dir
    self._manifest = captions.load_manifest(manual_dir)
    self.info.metadata['skipped_captions'] = {}

  def _generate_examples(self, split, sources):
    counts = collections.Counter()
    kept, text = [], {}
    for src in sources:
      rel = os.path.relpath(src.path, self._manual_dir).replace(os.sep, '/')
      caption, reason = captions.find_caption(self._manual_dir, rel, self._manifest)
      if caption is None:
        counts[reason] += 1
        logging.warning('Skipping video (%s): %s', reason, src.path)
        continue
      text[src.rel_path] = caption
      kept.append(src)
    skipped = {r: int(counts.get(r, 0)) for r in captions.SKIP_REASONS}
    self.info.metadata['skipped_captions'][split] = skipped
    logging.info('%s/%s: %d captioned videos, caption skips %s', self.name, split, len(kept), json.dumps(skipped))
    for key, example in super()._generate_examples(split, kept):
      example['caption'] = text[example['path']]
      yield key, example

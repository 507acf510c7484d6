"""`ucf101` (TFDS name `ucf101_videos`; TFDS's own `ucf101` is a different builder): UCF101 avi files.

Layout of `manual_dir` (UCF101.rar and UCF101TrainTestSplits-RecognitionTask.zip from
https://www.crcv.ucf.edu/data/UCF101.php, extracted):

  manual_dir/UCF-101/<ClassName>/v_<ClassName>_gXX_cYY.avi     (or manual_dir/<ClassName>/... directly)
  manual_dir/ucfTrainTestlist/{trainlist0[1-3].txt,testlist0[1-3].txt}   (optional)

Labels: index of the class folder name in sorted order (official ucf101_datasets.py `find_classes`).
One TFDS split 'train' holds every video (Latte trains on train+test). When the split files are present, the
official folds are stored as example-index lists in `info.metadata['folds']` and selected in the pipeline
with `data.split = 'train1' | 'test1' | ... | 'test3'`.
"""

import os

from framedit_jax.data.builders import base
from framedit_jax.data.builders import scan


def _video_root(manual_dir):
  sub = os.path.join(manual_dir, 'UCF-101')
  return sub if os.path.isdir(sub) else manual_dir


class Ucf101Videos(base.VideoBuilder):
  """UCF101, 101 classes; labels from sorted folder names."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      'Download UCF101.rar (and optionally UCF101TrainTestSplits-RecognitionTask.zip) from '
      'https://www.crcv.ucf.edu/data/UCF101.php, extract them into manual_dir (UCF-101/<Class>/*.avi, '
      'ucfTrainTestlist/*.txt).')

  BUILDER_CONFIGS = base.standard_configs(min_frames=48)

  def _label_names(self, manual_dir):
    root = _video_root(manual_dir)
    return sorted(n for n in os.listdir(root) if os.path.isdir(os.path.join(root, n)) and n != 'ucfTrainTestlist')

  def _find_videos(self, manual_dir):
    root = _video_root(manual_dir)
    names = self._label_names(manual_dir)
    if not names:
      raise FileNotFoundError(f'manual_dir {manual_dir} has no UCF-101/<ClassName>/ folders.')
    return {'train': scan.find_sources(root, names)}

  def _extra_metadata(self, manual_dir, splits):
    list_dir = os.path.join(manual_dir, 'ucfTrainTestlist')
    self._fold_files = {}
    if os.path.isdir(list_dir):
      for kind in ('train', 'test'):
        for k in (1, 2, 3):
          path = os.path.join(list_dir, f'{kind}list0{k}.txt')
          if os.path.exists(path):
            with open(path) as f:
              names = {os.path.normpath(line.split()[0]) for line in f if line.strip()}
            self._fold_files[f'{kind}{k}'] = names

  def _generate_examples(self, split, sources):
    yield from super()._generate_examples(split, sources)
    kept = self.info.metadata['paths'][split]
    folds = {}
    for name, members in getattr(self, '_fold_files', {}).items():
      folds[name] = [i for i, p in enumerate(kept) if os.path.normpath(p) in members]
    self.info.metadata['folds'] = folds

"""`video_folder`: any directory tree of videos (mp4/avi/mov/webm/mkv) or per-video frame folders.

Layout of `manual_dir`:

  manual_dir/**/<video>.mp4 | <frame folder>/            -> split 'train'
  or manual_dir/train/**, manual_dir/test/**              -> splits 'train' and 'test'

Labels: the index of the top-level sub folder (below train/ or test/ when present) in sorted order; they are
always stored and returned by the pipeline only when `config.data.label_subfolders` is True. Use a
different `data_dir` for every folder you build.
"""

from framedit_jax.data.builders import base
from framedit_jax.data.builders import scan


class VideoFolder(base.VideoBuilder):
  """A user folder of videos; labels from top-level sub folders."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      'Put your videos (mp4/avi/mov/webm or one folder of frames per video) in manual_dir; optional train/ and '
      'test/ sub folders make the splits; class sub folders give labels.')

  def _label_names(self, manual_dir):
    return scan.class_names(scan.split_roots(manual_dir))

  def _find_videos(self, manual_dir):
    roots = scan.split_roots(manual_dir)
    names = scan.class_names(roots)
    return {split: scan.find_sources(root, names) for split, root in roots.items()}

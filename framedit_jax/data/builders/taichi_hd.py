"""`taichi_hd`: Taichi-HD as per-video frame folders (or mp4 files), splits train/test.

Layout of `manual_dir` (the output of the First-Order-Motion-Model `load_videos.py`, 256x256 frames):

  manual_dir/train/<video_id>/<frame>.png|jpg    (frames sorted by the last integer in the name)
  manual_dir/test/<video_id>/...
  (mp4 files `manual_dir/{train,test}/<video_id>.mp4` are accepted too)

Source: official datasets/taichi_image_datasets.py (frame folders).
"""

from framedit_jax.data.builders import base
from framedit_jax.data.builders import scan


class TaichiHd(base.VideoBuilder):
  """Taichi-HD (unlabelled)."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      'Download Taichi-HD with https://github.com/AliaksandrSiarohin/first-order-model/tree/master/data/taichi-loading '
      '(load_videos.py, 256x256 frames) and put the train/ and test/ frame folders in manual_dir.')
  DEFAULT_FPS = 25.0

  def _find_videos(self, manual_dir):
    return scan.find_split_dirs(manual_dir, {'train': ('train',), 'test': ('test',)})

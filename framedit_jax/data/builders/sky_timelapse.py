"""`sky_timelapse`: SkyTimelapse frame folders, splits train/test.

Layout of `manual_dir` (the archive of https://github.com/weixiong-ur/mdgan, `sky_timelapse/`):

  manual_dir/sky_train/<video_id>/<clip_id>/<video_id>_<clip_id>_frames_000001.jpg ...
  manual_dir/sky_test/...
  (`train`/`test` are accepted instead of `sky_train`/`sky_test`; every folder that holds images is one video)

Folders with 1000 frames or more are cut into chunks of 1000 frames, as the official loader does.
Source: official datasets/sky_datasets.py.
"""

from framedit_jax.data.builders import base
from framedit_jax.data.builders import scan

CHUNK = 1000


class SkyTimelapse(base.VideoBuilder):
  """SkyTimelapse (unlabelled)."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      'Download SkyTimelapse (sky_timelapse.zip from https://github.com/weixiong-ur/mdgan) and put its sky_train/ '
      'and sky_test/ folders in manual_dir.')
  DEFAULT_FPS = 25.0

  def _find_videos(self, manual_dir):
    splits = scan.find_split_dirs(manual_dir, {'train': ('sky_train', 'train'), 'test': ('sky_test', 'test')})
    return {name: scan.chunk_frame_folders(sources, CHUNK) for name, sources in splits.items()}

"""`faceforensics`: FaceForensics mp4 files (the pristine videos Latte/StyleGAN-V train on).

Layout of `manual_dir`:

  manual_dir/<any sub folders>/<video>.mp4          -> split 'train' (all videos, as the official loader)
  or manual_dir/train/..., manual_dir/test/...      -> splits 'train' and 'test'

Source: official datasets/ffs_datasets.py.
"""

from framedit_jax.data.builders import base
from framedit_jax.data.builders import scan


class Faceforensics(base.VideoBuilder):
  """FaceForensics (unlabelled)."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      'Request FaceForensics at https://github.com/ondyari/FaceForensics (original_sequences/youtube, c23 mp4; '
      'Latte uses the pre-processed face crops) and put the mp4 files in manual_dir (optionally in train/ and test/).')

  def _find_videos(self, manual_dir):
    return scan.find_train_test_or_all(manual_dir)

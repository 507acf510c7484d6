"""TFDS builders for framedit-jax (importing this module registers them with TFDS).

Dataset name (config.data.dataset) -> builder class; `ucf101` maps to TFDS name `ucf101_videos` because TFDS
ships an unrelated `ucf101` builder.
"""

from framedit_jax.data.builders.faceforensics import Faceforensics
from framedit_jax.data.builders.moving_shapes import MovingShapes
from framedit_jax.data.builders.sample_videos import SampleVideos
from framedit_jax.data.builders.sky_timelapse import SkyTimelapse
from framedit_jax.data.builders.taichi_hd import TaichiHd
from framedit_jax.data.builders.text_video_folder import TextVideoFolder
from framedit_jax.data.builders.ucf101 import Ucf101Videos
from framedit_jax.data.builders.video_folder import VideoFolder

BUILDERS = {
    'sample_videos': SampleVideos,
    'moving_shapes': MovingShapes,
    'taichi_hd': TaichiHd,
    'sky_timelapse': SkyTimelapse,
    'faceforensics': Faceforensics,
    'ucf101': Ucf101Videos,
    'ucf101_videos': Ucf101Videos,
    'video_folder': VideoFolder,
    'text_video_folder': TextVideoFolder,
}

"""Shared builder of the 256x256 benchmark configs (taichi256, sky256, ffs256, ucf101_256)."""

from configs import taichi128
from framedit_jax.data import config_overrides


def dataset_256_config(dataset: str, arg: str | None = None):
  """FrameDiT-H-XL/2 at 256x256, 16 frames, frame_interval 3, on ``dataset`` (official settings).

  ``arg`` is the config argument: ``runlocal`` shrinks model, batch, resolution (32) and steps; named dataset
  overrides (data_dir, manual_dir, frame_interval, num_frames, use_image_num) are applied last.
  """
  args = taichi128.parse_arg(arg)
  config = taichi128.get_config(arg)
  config.data.dataset = dataset
  config.data.image_size = 256
  config.data.num_frames = 16
  config.data.frame_interval = 3
  if args.get('runlocal'):
    config.data.image_size = 32
    config.data.num_frames = 4
    config.data.frame_interval = 1
  return config_overrides.apply_data_overrides(config, args)

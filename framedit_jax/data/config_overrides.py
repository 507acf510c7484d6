"""Named dataset overrides for benchmark configs: `--config=configs/sky256.py:data_dir=/d,frame_interval=2`."""

DATA_OVERRIDES = {'data_dir': str, 'manual_dir': str, 'frame_interval': int, 'num_frames': int,
                  'use_image_num': int, 'image_size': int, 'dataset': str}


def apply_data_overrides(config, args):
  """Copies the DATA_OVERRIDES keys present in `args` (parsed config argument) into `config.data`."""
  for key, cast in DATA_OVERRIDES.items():
    if key in args and args[key] is not True:
      config.data[key] = cast(args[key])
  return config

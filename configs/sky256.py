"""SkyTimelapse at 256x256, FrameDiT-H-XL/2 with the official settings (stride, center-crop + resize, no flip).

Source: official `configs/sky/FrameDiTH-XL-128-512-concat_train.yaml` and `datasets/sky_datasets.py`.

  python launch/prepare_data.py --dataset=sky_timelapse --manual_dir=/data/sky --data_dir=/data/tfds
  python launch/train.py --config=configs/sky256.py:data_dir=/data/tfds --workdir=/ckpt/sky256 \
      --config.vae.checkpoint=/weights/sd-vae-ft-ema/diffusion_pytorch_model.safetensors

Named dataset overrides (config argument): data_dir, manual_dir, frame_interval, num_frames, use_image_num,
e.g. `--config=configs/sky256.py:manual_dir=/data/sky,use_image_num=8` (IMG joint training);
`runlocal` shrinks model, batch, resolution and steps for a smoke test.
"""

from configs import common


def get_config(arg: str | None = None):
  return common.dataset_256_config('sky_timelapse', arg, 'configs/sky256.py')

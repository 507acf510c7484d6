"""Taichi-HD at 256x256, FrameDiT-H-XL/2 with the official settings (stride, random flip).

Source: official `configs/taichi/FrameDiTH-XL-128-512-concat_train.yaml` and `datasets/taichi_datasets.py`.

  python launch/prepare_data.py --dataset=taichi_hd --manual_dir=/data/taichi --data_dir=/data/tfds
  python launch/train.py --config=configs/taichi256.py:data_dir=/data/tfds --workdir=/ckpt/taichi256 \
      --config.vae.checkpoint=/weights/sd-vae-ft-ema/diffusion_pytorch_model.safetensors

Named dataset overrides (config argument): data_dir, manual_dir, frame_interval, num_frames, use_image_num,
e.g. `--config=configs/taichi256.py:manual_dir=/data/taichi,use_image_num=8` (IMG joint training);
`runlocal` shrinks model, batch, resolution and steps for a smoke test.
"""

from configs import common


def get_config(arg: str | None = None):
  return common.dataset_256_config('taichi_hd', arg, 'configs/taichi256.py')

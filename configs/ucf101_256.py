"""UCF101 at 256x256, FrameDiT-H-XL/2 with the official settings (linspace, resize + random flip; class-conditional).

Source: official `configs/ucf101/FrameDiTH-XL-128-512-concat_train.yaml` and `datasets/ucf101_datasets.py`.

  python launch/prepare_data.py --dataset=ucf101 --manual_dir=/data/ucf101 --data_dir=/data/tfds
  python launch/train.py --config=configs/ucf101_256.py:data_dir=/data/tfds --workdir=/ckpt/ucf101_256 \
      --config.vae.checkpoint=/weights/sd-vae-ft-ema/diffusion_pytorch_model.safetensors

Named dataset overrides (config argument): data_dir, manual_dir, frame_interval, num_frames, use_image_num,
e.g. `--config=configs/ucf101_256.py:manual_dir=/data/ucf101,use_image_num=8` (IMG joint training);
`runlocal` shrinks model, batch, resolution and steps for a smoke test.
"""

from configs import common


def get_config(arg: str | None = None):
  config = common.dataset_256_config('ucf101', arg, 'configs/ucf101_256.py')
  config.model.num_classes = 101  # class-conditional (official extras: 2), labels = sorted class folders
  config.sample.cfg_scale = 7.0
  return config

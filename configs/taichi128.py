"""Taichi-HD at 128x128, FrameDiT-H-XL/2 (official Taichi settings).

Source: official `configs/taichi/FrameDiTH-XL-128-512-concat_train.yaml`; FrameDiT supplement §2.1.

  python launch/prepare_data.py --dataset=taichi_hd --manual_dir=/data/taichi --data_dir=/data/tfds
  python launch/train.py --config=configs/taichi128.py --workdir=/ckpt/taichi128 \
      --config.data.data_dir=/data/tfds --config.vae.checkpoint=/weights/sd-vae-ft-ema/diffusion_pytorch_model.safetensors

Config argument (configs/common.py): `runlocal` shrinks model, batch and steps for a smoke test;
`model=FrameDiTG-XL/128-512/2` picks another registered model; `data_dir`, `manual_dir`, `frame_interval`,
`num_frames`, `use_image_num` override `config.data`, e.g. `--config=configs/taichi128.py:data_dir=/data/tfds`.
"""

from configs import common
from configs import default


def get_config(arg: str | None = None):
  """Config argument: `common.BENCHMARK_KEYS` (runlocal, model, data_dir, manual_dir, frame_interval, ...)."""
  args = common.parse_arg(arg, common.BENCHMARK_KEYS, 'configs/taichi128.py')
  return common.apply_data_overrides(base_config(args), args)


def base_config(args: dict):
  """The Taichi 128² settings for parsed arguments `args` (runlocal, model), before the data overrides."""
  config = default.get_config()
  config.model.name = args.get('model', 'FrameDiTH-XL/128-512/2-concat')
  config.model.num_classes = 0  # unconditional (official extras: 1)

  config.data.dataset = 'taichi_hd'
  config.data.image_size = 128
  config.data.num_frames = 16
  config.data.frame_interval = 3
  config.data.global_batch_size = 16

  config.vae.name = 'sd'
  config.vae.checkpoint = None  # set to sd-vae-ft-ema diffusion_pytorch_model.safetensors

  config.optim.lr = 1e-4
  config.optim.clip_max_norm = 0.1
  config.optim.start_clip_iter = 20_000
  config.optim.ema_decay = 0.9999

  config.sample.sampler = 'ddpm'
  config.sample.num_steps = 250

  if args.get('runlocal'):
    config.model.name = args.get('model', 'FrameDiTH-S/64-256/4-concat')
    config.model.overrides.hidden_size = 64
    config.model.overrides.depth = 2
    config.model.overrides.num_heads = 2
    config.model.dtype = 'float32'
    config.data.num_frames = 4
    config.data.global_batch_size = 2
    config.train.num_steps = 2
    config.train.log_every = 1
    config.train.ckpt_every = 2
    config.sample.num_steps = 4
    config.sample.num_samples = 1
  return config

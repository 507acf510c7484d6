"""Taichi-HD at 128x128, FrameDiT-H-XL/2 (official Taichi settings).

Source: official `configs/taichi/FrameDiTH-XL-128-512-concat_train.yaml`; FrameDiT supplement §2.1.

  python launch/prepare_data.py --dataset=taichi_hd --manual_dir=/data/taichi --data_dir=/data/tfds
  python launch/train.py --config=configs/taichi128.py --workdir=/ckpt/taichi128 \
      --config.data.data_dir=/data/tfds --config.vae.checkpoint=/weights/sd-vae-ft-ema/diffusion_pytorch_model.safetensors

Variants: `--config=configs/taichi128.py:runlocal` shrinks model, batch and steps for a smoke test;
`--config=configs/taichi128.py:model=FrameDiTG-XL/128-512/2` picks another registered model.
"""

from configs import default


def parse_arg(arg: str | None) -> dict:
  """``'runlocal,model=Latte-XL/2'`` -> ``{'runlocal': True, 'model': 'Latte-XL/2'}``."""
  out = {}
  for part in filter(None, (arg or '').split(',')):
    k, _, v = part.partition('=')
    out[k] = v if v else True
  return out


def get_config(arg: str | None = None):
  args = parse_arg(arg)
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

"""Base config of the motion study (benchmarks/motion_study.py): the demo's model and objective on `moving_shapes`.

The demo's pixel-space FrameDiT-H (width 128, depth 4, 4 heads, patch 4, fp32, unrolled blocks without remat,
rectified flow, EMA 0.99; configs/demo.py) on 32x32 16-frame clips at frame_interval 1 (FVD and FVMD need 16
frames), lr 1e-3 without the demo's time shift (the committed study ran with these). The study sets
`model.name` per design (Latte-S/4, FrameDiTG-S/64-256/4, FrameDiTH-S/64-256/4-concat, DiT3D-S/4; the S size is
overridden by the demo's width/depth/heads).

  python launch/train.py --config=configs/motion_study.py --workdir=/tmp/ms   # one design alone (FrameDiT-H)
"""

from configs import common
from configs import demo


def get_config(arg: str | None = None):
  common.parse_arg(arg, {}, 'configs/motion_study.py')  # takes no config argument
  config = demo.get_config()

  config.data.dataset = 'moving_shapes'  # builder config s32: 256 train / 64 test videos of 64 frames
  config.data.num_frames = 16
  config.data.frame_interval = 1
  config.data.num_parallel_calls = 1

  config.diffusion.rf_shift = 1.0
  config.optim.lr = 1e-3

  config.train.num_steps = 2000
  config.train.log_every = 50
  config.train.ckpt_every = 500
  config.train.keep = 1

  config.sample.sampler = 'euler'  # rectified flow: the flow-ODE Euler sampler
  config.sample.num_samples = 8
  config.sample.batch_size = 8
  return config

"""Base config of the motion study (benchmarks/motion_study.py): class-conditional on the motion class.

The demo's pixel-space model (width 128, depth 4, 4 heads, patch 4, fp32, rectified flow, Euler-50; configs/demo.py)
on `moving_shapes/motion2`: 16x16 8-frame clips (4x4 tokens per frame) of one shape on a plain background, label 0 = small motion
(0.5-1 px/frame), 1 = large motion (3-4 px/frame). Each model learns both classes; its samples of each class are
scored against that class's real clips. The study sets `model.name` per design (Latte-S/4, FrameDiTG-S/64-256/4,
FrameDiTH-S/64-256/4-concat, DiT3D-S/4; the S size is overridden by the width/depth/heads above), and the trial
log in benchmarks/README.md records how lr, steps and batch were chosen.

  python launch/train.py --config=configs/motion_study.py --workdir=/tmp/ms   # one design alone (FrameDiT-H)
"""

from configs import common
from configs import demo


def get_config(arg: str | None = None):
  common.parse_arg(arg, {}, 'configs/motion_study.py')  # takes no config argument
  config = demo.get_config()

  config.data.dataset = 'moving_shapes/motion2'
  config.data.image_size = 16
  config.data.num_frames = 8
  config.data.frame_interval = 1
  config.data.num_parallel_calls = 1
  config.data.global_batch_size = 8

  config.model.num_classes = 2  # the motion class; 0.1 class dropout (default) keeps the null class trained
  config.diffusion.rf_shift = 1.0
  config.optim.lr = 2e-3  # the demo's; trials: benchmarks/README.md (motion study)
  config.optim.ema_decay = 0.99

  config.train.num_steps = 1200
  config.train.log_every = 50
  config.train.ckpt_every = 500
  config.train.keep = 1

  config.sample.sampler = 'euler'  # rectified flow: the flow-ODE Euler sampler
  config.sample.num_steps = 50
  config.sample.num_samples = 8
  config.sample.batch_size = 8
  return config

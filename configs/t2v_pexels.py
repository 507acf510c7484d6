"""Text-to-video on Pexels with the official FrameDiT settings (configs/pexels/*_train.yaml).

  # once: encode every video (and store its caption) into the latent cache, as the official recipe
  # trains on precomputed latents (datasets/latent_text_video_dataset.py)
  python launch/prepare_latents.py --config=configs/t2v_pexels.py --config.data.manual_dir=/data/pexels \
      --config.vae.checkpoint=/ckpt/Latte-1/vae/diffusion_pytorch_model.safetensors \
      --config.data.latents_dir=/data/pexels_latents
  python launch/train.py --config=configs/t2v_pexels.py --workdir=/ckpt/t2v_pexels \
      --config.text.root=/ckpt/Latte-1 --config.model.init_from=/ckpt/Latte-1/transformer \
      --config.vae.checkpoint=/ckpt/Latte-1/vae/diffusion_pytorch_model.safetensors \
      --config.data.latents_dir=/data/pexels_latents

The T5 embeddings of every caption are cached once beside the latents (`text_cache.npz`). To train from the
videos instead (VAE-encoded in the loop), add --config.data.use_latents=False --config.data.manual_dir=/data/pexels.

Official: FrameDiTHT2V-XL/256-2-1-2-concat initialised from Latte-1, 16 frames at interval 1, 512x512, AdamW
lr 3e-4 with 10k warm-up steps, weight decay 1e-4, gradient clipping 1.0 from step 0, EMA updated every 4
steps, local batch 1 x grad-accum 8, bf16, DDIM-50 with guidance 7.5 for samples; LoRA (r 32, alpha 32 on
to_q/to_k/to_v/to_out.0) optional and off. `data.manual_dir` holds the videos with captions (see
framedit_jax/data/builders/captions.py).
"""

from configs import common
from configs import t2v_common


def get_config(arg: str | None = None):
  common.parse_arg(arg, {}, 'configs/t2v_pexels.py')  # takes no config argument
  config = t2v_common.get_config()
  config.model.name = 'FrameDiTHT2V-XL/256-2-1-2-concat'
  config.model.init_from = ''  # Latte-1 transformer/ folder (official: maxin-cn/Latte-1)
  config.model.dtype = 'bfloat16'
  config.text.root = ''  # Latte-1 root holding tokenizer/ and text_encoder/ (T5 v1.1 XXL)
  config.vae.name = 'sd'
  config.data.image_size = 512
  config.data.num_frames = 16
  config.data.frame_interval = 1
  config.data.builder_config = 'full'
  config.data.use_latents = True  # set data.latents_dir to the launch/prepare_latents.py output
  config.data.global_batch_size = 8
  config.optim.lr = 3e-4
  config.optim.warmup_steps = 10_000
  config.optim.weight_decay = 1e-4
  config.optim.clip_max_norm = 1.0
  config.optim.start_clip_iter = 0
  config.optim.ema_update_every = 4
  config.train.num_steps = 800_000
  config.train.ckpt_every = 5000
  config.train.log_every = 25
  config.sample.sampler = 'ddim'
  config.sample.num_steps = 50
  config.sample.cfg_scale = 7.5
  return config

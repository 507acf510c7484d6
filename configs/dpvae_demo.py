"""Demo: a small DP-VAE (VideoDiT §3.1) trained on the embedded sample clips, random-weight 2D key-frame VAE.

  python launch/train.py --config=configs/dpvae_demo.py --workdir=/tmp/dpvae_demo
  python launch/eval_vae.py --config=configs/dpvae_demo.py --workdir=/tmp/dpvae_demo

32x32 clips of 8 frames (t_g = 4) -> latents (2, 4, 4, 4). Writes TensorBoard scalars, checkpoints,
reconstruction mp4s (`recon/`) and the export `dpvae_export/` that `--config.vae.name=dpvae
--config.vae.checkpoint=/tmp/dpvae_demo/dpvae_export` loads for diffusion training. Running it again resumes.
With SD weights as E_k/D_k: `--config.dpvae.key_vae_checkpoint=.../diffusion_pytorch_model.safetensors` and
`--config.dpvae.block_out_channels=128,256,512,512 --config.dpvae.norm_num_groups=32` (the SD architecture).
"""

import ml_collections

from configs import common
from configs import default


def get_config(arg: str | None = None):
  common.parse_arg(arg, {}, 'configs/dpvae_demo.py')  # takes no config argument
  config = default.get_config()
  config.task = 'dpvae'
  config.seed = 0
  config.data.dataset = 'sample_videos'
  config.data.image_size = 32
  config.data.num_frames = 8
  config.data.frame_interval = 2
  config.data.global_batch_size = 4
  config.vae.name = 'dpvae'

  config.dpvae = c = ml_collections.ConfigDict()
  c.t_g = 4  # GoP size = temporal compression (paper: 4)
  c.block_out_channels = (32, 64, 64, 64)  # 4 levels: spatial /8, as the SD VAE
  c.layers_per_block = 1
  c.latent_channels = 4
  c.norm_num_groups = 8
  c.key_vae_checkpoint = ml_collections.FieldReference(None, field_type=str)  # None = random-weight 2D VAE
  c.key_vae_seed = 0
  c.key_vae_norm_num_groups = 32
  c.init_from_key = True  # E_r / D start as a copy of the 2D VAE (paper §A.1)
  c.disc_channels = 16
  c.disc_layers = 2
  c.disc_start = 150  # adversarial term from this step on
  c.weights = ml_collections.ConfigDict(dict(recon=1.0, reg=1.0, lpips=0.1, adv=0.01))  # paper Eq. 4
  c.lpips_weights = ml_collections.FieldReference(None, field_type=str)  # LPIPS .npz (eval/lpips_convert.py)
  c.optim = ml_collections.ConfigDict(dict(lr=3e-4, b1=0.9, b2=0.999, weight_decay=0.0, clip_max_norm=1.0,
                                           disc_lr=3e-4, disc_b1=0.5, disc_b2=0.9))
  c.eval_split = 'test'
  c.num_recon_videos = 2
  c.eval_num_videos = 8

  config.train.num_steps = 200
  config.train.log_every = 20
  config.train.ckpt_every = 100
  config.train.keep = 2
  config.sample.fps = 8
  return config

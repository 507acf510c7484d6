"""Demo: FrameDiT-H diffusion on DP-VAE latents (run configs/dpvae_demo.py first).

  python launch/train_vae.py --config=configs/dpvae_demo.py --workdir=/tmp/dpvae_demo
  python launch/train.py --config=configs/dpvae_diffusion_demo.py --workdir=/tmp/dpvae_diffusion \
      --config.vae.checkpoint=/tmp/dpvae_demo/dpvae_export

8-frame 32x32 clips are encoded on the fly to latents (2, 4, 4, 4): t_g = 4 times fewer frames than the
per-frame SD VAE would give; the model and sampler run on 2 latent frames, samples decode back to 8 frames.
"""

from configs import common
from configs import demo


def get_config(arg: str | None = None):
  common.parse_arg(arg, {}, 'configs/dpvae_diffusion_demo.py')  # takes no config argument
  config = demo.with_iddpm(demo.get_config())  # the objective this demo was made with
  config.model.name = 'FrameDiTH-S/64-256/2-concat'  # 4x4 latents -> 2x2 patches per latent frame
  config.vae.name = 'dpvae'
  config.vae.checkpoint = None  # <workdir of train_vae.py>/dpvae_export
  config.data.num_frames = 8  # a multiple of t_g = 4
  config.train.fvd_every = 0  # I3D needs >= 9 frames
  return config

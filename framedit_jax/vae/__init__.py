"""Stable Diffusion VAE (AutoencoderKL) in Flax, weight conversion, video helpers and the latent cache.

  vae = load_vae(config.vae)
  z = vae.encode_video(video, key=key)   # (B, T, H, W, 3) in [-1, 1] -> (B, T, H/8, W/8, 4) * 0.18215
  x = vae.decode_video(z)                # -> (B, T, H, W, 3)
"""

from framedit_jax.vae.autoencoder_kl import AutoencoderKL, SD_VAE_CONFIG
from framedit_jax.vae.loader import build_module, load_torch_weights, load_vae
from framedit_jax.vae.video import IdentityVAE, VideoVAE

"""Reconstruction quality of a trained DP-VAE vs the per-frame 2D (SD) VAE on the same held-out clips.

  python launch/eval_vae.py --config=configs/dpvae_demo.py --workdir=/tmp/dpvae_demo

Reads <workdir>/dpvae_export (or --config.vae.checkpoint), draws config.dpvae.eval_num_videos clips of
config.dpvae.eval_split (seed + 7919, the stream the reconstruction mp4s use), reconstructs them with
  * dpvae: the DP-VAE (latent T / t_g frames),
  * per_frame_2d: the DP-VAE's frozen key-frame 2D VAE applied to every frame (the SD VAE when
    config.dpvae.key_vae_checkpoint was SD weights; random weights in the demo),
and prints PSNR (dB), SSIM (scikit-image) and, with --config.dpvae.lpips_weights=lpips_vgg.npz (converted by
`python -m framedit_jax.eval.lpips_convert`), LPIPS (framedit_jax.eval.lpips); it writes <workdir>/eval_vae.json.
"""

import json
import os
import sys

from absl import flags
from absl import logging
from ml_collections import config_flags

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Path to a get_config() file.', lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Training-run directory of launch/train_vae.py (holds dpvae_export/).')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  del argv
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.set_visible_devices([], 'GPU')
  from framedit_jax.eval.recon_metrics import compare_codecs  # pylint: disable=g-import-not-at-top
  from framedit_jax.train.tasks.dpvae import held_out_clips  # pylint: disable=g-import-not-at-top
  from framedit_jax.vae import load_vae  # pylint: disable=g-import-not-at-top
  from framedit_jax.vae.video import VideoVAE  # pylint: disable=g-import-not-at-top
  config = _CONFIG.value.copy_and_resolve_references()
  with config.unlocked():
    config.vae.name = 'dpvae'
    if not config.vae.get('checkpoint'):
      config.vae.checkpoint = os.path.join(_WORKDIR.value, 'dpvae_export')
  dpvae = load_vae(config.vae)  # a missing export is one `error:` line (cli.run)
  per_frame = VideoVAE(dpvae.key_module, dpvae.key_params, dpvae.scale_factor)
  clips = held_out_clips(config, int(config.dpvae.get('eval_num_videos', 8)))
  from framedit_jax.eval.lpips import WEIGHTS_HINT, make_lpips_fn  # pylint: disable=g-import-not-at-top
  lpips_weights = config.dpvae.get('lpips_weights')
  lpips_fn = make_lpips_fn(lpips_weights) if lpips_weights else None
  if lpips_fn is None:
    print(f'DP-VAE eval: no --config.dpvae.lpips_weights, LPIPS not reported. {WEIGHTS_HINT}', flush=True)
  results = compare_codecs({'dpvae': dpvae, 'per_frame_2d': per_frame}, clips, lpips_fn=lpips_fn)
  print(f'{len(clips)} clips {tuple(clips.shape[1:])} of {config.data.dataset}/{config.dpvae.eval_split}')
  print(f'{"codec":14s} {"latent (T, h, w, C)":22s} {"PSNR dB":>8s} {"SSIM":>7s} {"LPIPS":>7s}')
  for name, r in results.items():
    lp = '-' if r['lpips'] is None else f'{r["lpips"]:.4f}'
    print(f'{name:14s} {str(r["latent_shape"]):22s} {r["psnr"]:8.2f} {r["ssim"]:7.4f} {lp:>7s}')
  with open(os.path.join(_WORKDIR.value, 'eval_vae.json'), 'w') as f:
    json.dump({k: dict(v, latent_shape=list(v['latent_shape'])) for k, v in results.items()}, f, indent=1)


if __name__ == '__main__':
  from framedit_jax.train import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)

"""launch/eval_vae.py run as a user would (subprocess) on a tiny trained DP-VAE run directory.

Reference: PSNR recomputed here from first principles (10 log10(1 / MSE) on [0, 1] frames, frame by frame) on the
same held-out clips, reconstructed in-process by the exported DP-VAE and by its key-frame 2D VAE per frame; and a
run directory without an export is one `error:` line naming the missing folder.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import _train_utils as tu
import test_train_dpvae as D

sys.path.insert(0, tu.REPO)

OVERRIDES = {'data.image_size': 16, 'data.num_frames': 4, 'dpvae.t_g': 2, 'dpvae.eval_num_videos': 2}


def _eval_vae(work, data_dir):
  args = [sys.executable, os.path.join(tu.REPO, 'launch', 'eval_vae.py'), f'--config={tu.REPO}/configs/dpvae_demo.py',
          f'--workdir={work}', f'--config.data.data_dir={data_dir}']
  args += [f'--config.{k}={v}' for k, v in OVERRIDES.items()]
  return subprocess.run(args, env=tu.env(), capture_output=True, text=True, timeout=600, cwd=tu.REPO)


def _psnr(x, y):
  mse = np.mean(np.square((np.clip(x, -1, 1) + 1) / 2 - (np.clip(y, -1, 1) + 1) / 2), axis=(2, 3, 4))
  return float(np.mean(10 * np.log10(1.0 / mse)))


def test_eval_vae_cli_scores_the_exported_run(tmp_path):
  from framedit_jax.train.loop import train_and_evaluate
  from framedit_jax.train.tasks.dpvae import held_out_clips
  from framedit_jax.vae import load_vae
  from framedit_jax.vae.video import VideoVAE
  data_dir = tmp_path / 'tfds'
  work = tmp_path / 'run'
  config = D._config(data_dir, **{'train.num_steps': 2, 'dpvae.eval_num_videos': 2})  # pylint: disable=protected-access
  train_and_evaluate(config, str(work))  # config.task = 'dpvae' (configs/dpvae_demo.py)
  assert os.path.isdir(work / 'dpvae_export')

  r = _eval_vae(work, data_dir)
  assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-3000:])
  with open(work / 'eval_vae.json') as f:
    got = json.load(f)
  assert sorted(got) == ['dpvae', 'per_frame_2d']

  config.vae.name, config.vae.checkpoint = 'dpvae', str(work / 'dpvae_export')
  dpvae = load_vae(config.vae)
  per_frame = VideoVAE(dpvae.key_module, dpvae.key_params, dpvae.scale_factor)
  clips = held_out_clips(config, 2)
  assert clips.shape == (2, 4, 16, 16, 3)
  for name, codec, latent_t in (('dpvae', dpvae, 2), ('per_frame_2d', per_frame, 4)):
    recon = np.asarray(codec.decode_video(codec.encode_video(clips, sample=False)))
    assert got[name]['psnr'] == pytest.approx(_psnr(clips, recon), abs=1e-3), name
    assert got[name]['latent_shape'][0] == latent_t and 0 < got[name]['ssim'] <= 1
  assert got['dpvae']['lpips'] is None  # no --config.dpvae.lpips_weights


def test_eval_vae_cli_without_export_is_one_line_error(tmp_path):
  r = _eval_vae(tmp_path / 'empty_run', tmp_path / 'tfds')
  assert r.returncode == 1
  errors = [l for l in r.stderr.splitlines() if l.startswith('error:')]
  assert len(errors) == 1 and 'dpvae_export' in errors[0] and 'Traceback' not in r.stderr, r.stderr[-2000:]

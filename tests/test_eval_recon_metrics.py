"""PSNR / SSIM reconstruction metrics (launch/eval_vae.py) against closed forms and scikit-image."""

import numpy as np
import pytest

from framedit_jax.eval import recon_metrics as rm
from framedit_jax.vae.video import IdentityVAE


def test_psnr_closed_form_and_ssim_matches_skimage():
  from skimage.metrics import structural_similarity
  rng = np.random.default_rng(0)
  x = rng.uniform(-0.8, 0.8, (2, 3, 16, 16, 3)).astype(np.float32)
  d = 0.1  # constant offset in [-1, 1] units = 0.05 in [0, 1] -> MSE 0.0025 -> PSNR 26.0206 dB
  np.testing.assert_allclose(rm.psnr_per_frame(x, x + d), 10 * np.log10(1 / 0.05 ** 2), rtol=1e-4)
  np.testing.assert_array_equal(rm.ssim_per_frame(x, x), 1.0)
  y = x + rng.normal(0, 0.2, x.shape).astype(np.float32)
  want = structural_similarity((x[1, 2] + 1) / 2, np.clip((y[1, 2] + 1) / 2, 0, 1), data_range=1.0,
                               channel_axis=-1)
  np.testing.assert_allclose(rm.ssim_per_frame(x, y)[1, 2], want, rtol=1e-6)
  assert rm.ssim_per_frame(x, y).mean() < 0.95
  m = rm.reconstruction_metrics(x, y, lpips_fn=lambda a, b: np.abs(a - b).mean(axis=(1, 2, 3)))
  np.testing.assert_allclose(m['lpips'], np.abs(x - y).mean(), rtol=1e-5)
  np.testing.assert_allclose(m['psnr'], rm.psnr_per_frame(x, y).mean(), rtol=1e-9)
  with pytest.raises(ValueError, match='one shape'):
    rm.psnr_per_frame(x, y[:, :2])


def test_compare_codecs_identity_is_perfect():
  x = np.random.default_rng(1).uniform(-1, 1, (3, 2, 8, 8, 3)).astype(np.float32)
  r = rm.compare_codecs({'identity': IdentityVAE()}, x, batch_size=2)['identity']
  assert r['psnr'] == float('inf') and r['ssim'] == 1.0 and r['latent_shape'] == (2, 8, 8, 3)
  assert r['num_frames'] == 6

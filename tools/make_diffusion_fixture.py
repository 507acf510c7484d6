"""Writes tests/fixtures/diffusion/official.npz: reference numbers from the OFFICIAL FrameDiT diffusion code.

The official `diffusion` package (IDDPM-derived, PyTorch) is imported at run time from --official-src; nothing of
it is copied into this repository. For fixed x_0, noise, model outputs and t (float64 and float32) we store:
  * training_losses -> loss / mse / vb for several configurations (hybrid default, rescaled-MSE, use_kl,
    fixed-large and fixed-small variance, x_0 target, a respaced "250" process, the cosine schedule);
  * p_mean_variance (mean, log_variance, pred_xstart), q_posterior_mean_variance, q_sample and one DDIM η=0 step;
  * the respaced timestep lists of "250", "ddim25", "10", "10,20,30", and the cosine ᾱ table.

Arrays are saved in OUR layout (B, T, H, W, C); they are permuted to the official (B, T, C, H, W) for the call.

Note on float64: the official `_extract_into_tensor` casts every table entry to float32 (`.float()`), so its
"float64" results carry float32-rounded coefficients (relative error ~6e-8). The float64 cases are therefore
recorded twice: `official` (as is) and `exact64` (same code with that helper returning float64 tables), and
the test compares ours in float64 against `exact64` at 1e-6 and against `official` at the looser level the
cast allows.

Usage:
  python tools/make_diffusion_fixture.py --official-src /tmp/official [--out tests/fixtures/diffusion/official.npz]
"""

import argparse
import os
import sys

import numpy as np

B, T, H, W, C = 4, 3, 4, 4, 4
TIMESTEPS = np.array([0, 1, 500, 999])
RESPACED_T = np.array([0, 1, 125, 249])  # indices into the "250" process

CASES = {
    # name: (create_diffusion kwargs of the official function, our create_diffusion kwargs, respacing)
    'hybrid': (dict(), dict(), ''),
    'rescaled_mse': (dict(rescale_learned_sigmas=True), dict(rescale_learned_sigmas=True), ''),
    'use_kl': (dict(use_kl=True), dict(use_kl=True), ''),
    'fixed_large': (dict(learn_sigma=False), dict(learn_sigma=False), ''),
    'fixed_small_kl': (dict(learn_sigma=False, sigma_small=True, use_kl=True),
                       dict(learn_sigma=False, sigma_small=True, use_kl=True), ''),
    'x0': (dict(predict_xstart=True), dict(predict='x0'), ''),
    'respaced250': (dict(), dict(), '250'),
    'cosine': (dict(noise_schedule='squaredcos_cap_v2'), dict(noise_schedule='cosine'), ''),
}


def _to_torch_layout(a):
  return np.ascontiguousarray(np.transpose(a, (0, 1, 4, 2, 3)))


def _to_ours(a):
  return np.ascontiguousarray(np.transpose(a, (0, 1, 3, 4, 2)))


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--official-src', required=True, help='root of the official FrameDiT code (has diffusion/)')
  parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__), '..', 'tests', 'fixtures',
                                                    'diffusion', 'official.npz'))
  args = parser.parse_args()
  if not os.path.isdir(os.path.join(args.official_src, 'diffusion')):
    sys.exit(f'--official-src {args.official_src!r} has no diffusion/ folder; point it at the official repo root.')
  import torch  # pylint: disable=g-import-not-at-top
  sys.path.insert(0, os.path.abspath(args.official_src))
  import diffusion as official  # pylint: disable=g-import-not-at-top
  from diffusion import gaussian_diffusion as official_gd  # pylint: disable=g-import-not-at-top

  rng = np.random.RandomState(1234)
  x0 = rng.uniform(-1.0, 1.0, (B, T, H, W, C))
  x0[0, 0, 0, 0, :2] = [-1.0, 1.0]  # exercise the decoder's edge bins at t = 0
  noise = rng.randn(B, T, H, W, C)
  mean_out = rng.randn(B, T, H, W, C)
  var_out = np.tanh(rng.randn(B, T, H, W, C))
  out = {'x0': x0, 'noise': noise, 'model_out': np.concatenate([mean_out, var_out], -1),
         'timesteps': TIMESTEPS, 'respaced_t': RESPACED_T}

  original_extract = official_gd._extract_into_tensor

  def extract_exact(arr, timesteps, broadcast_shape):
    res = torch.from_numpy(arr)[timesteps]
    while res.dim() < len(broadcast_shape):
      res = res[..., None]
    return res + torch.zeros(broadcast_shape, dtype=res.dtype)

  runs = [('f64', np.float64, original_extract), ('exact64', np.float64, extract_exact),
          ('f32', np.float32, original_extract)]
  for tag, dtype, extract in runs:
    official_gd._extract_into_tensor = extract
    tt = lambda a: torch.from_numpy(_to_torch_layout(a.astype(dtype)))
    x0_t, noise_t = tt(x0), tt(noise)
    for name, (okw, _, respacing) in CASES.items():
      d = official.create_diffusion(respacing, **okw)
      learn = okw.get('learn_sigma', True)
      model_out = out['model_out'] if learn else mean_out
      seen = {}

      def model(x, t, r=tt(model_out)):
        seen['t'] = t.numpy().copy()
        return r
      t = torch.from_numpy(RESPACED_T if respacing else TIMESTEPS)
      with torch.no_grad():
        terms = d.training_losses(model, x0_t, t, noise=noise_t)
      for k in ('loss', 'mse', 'vb'):
        if k in terms:
          out[f'{tag}/{name}/{k}'] = terms[k].numpy()
      out[f'{tag}/{name}/model_t'] = seen['t']
    # Deterministic pieces of the default process.
    d = official.create_diffusion('')
    t = torch.from_numpy(TIMESTEPS)
    x_t = d.q_sample(x0_t, t, noise=noise_t)
    out[f'{tag}/q_sample'] = _to_ours(x_t.numpy())
    pm, pv, plv = d.q_posterior_mean_variance(x0_t, x_t, t)
    out[f'{tag}/posterior_mean'] = _to_ours(pm.numpy())
    out[f'{tag}/posterior_variance'] = pv[:, 0, 0, 0, 0].numpy()
    out[f'{tag}/posterior_log_variance'] = plv[:, 0, 0, 0, 0].numpy()
    with torch.no_grad():
      p = d.p_mean_variance(lambda *a, r=tt(out['model_out']): r, x_t, t, clip_denoised=False)
      ddim = d.ddim_sample(lambda *a, r=tt(out['model_out']): r, x_t, t, clip_denoised=False, eta=0.0)
    for k in ('mean', 'log_variance', 'pred_xstart'):
      out[f'{tag}/p_{k}'] = _to_ours(p[k].numpy())
    out[f'{tag}/ddim_sample'] = _to_ours(ddim['sample'].numpy())
  official_gd._extract_into_tensor = original_extract

  for spec in ('250', 'ddim25', '10', '10,20,30'):
    out[f'respacing/{spec}'] = np.array(sorted(official.space_timesteps(1000, spec)), np.int64)
  out['cosine_alphas_cumprod'] = official.create_diffusion('', noise_schedule='squaredcos_cap_v2').alphas_cumprod

  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  np.savez_compressed(args.out, **out)
  print(f'wrote {len(out)} arrays to {args.out} ({os.path.getsize(args.out) / 1024:.1f} KiB)')


if __name__ == '__main__':
  main()

"""benchmarks/sampling_vs_official.py: the noise it hands the official loop is the noise ours' sampler draws, the
official-side noise queue behaves, and (where the official code is unpacked, FRAMEDIT_OFFICIAL_SRC) both samplers
compute the same sample from the same weights and noise."""

import importlib.util
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OFFICIAL_SRC = os.environ.get('FRAMEDIT_OFFICIAL_SRC', '')


def _load(name):
  sys.path.insert(0, os.path.join(ROOT, 'benchmarks'))
  spec = importlib.util.spec_from_file_location(f'bench_{name}', os.path.join(ROOT, 'benchmarks', f'{name}.py'))
  mod = importlib.util.module_from_spec(spec)
  sys.modules[spec.name] = mod
  spec.loader.exec_module(mod)
  return mod


svo = _load('sampling_vs_official')


def test_parse_sampler():
  assert svo.parse_sampler('ddpm250') == ('ddpm', 250)
  assert svo.parse_sampler('ddim50') == ('ddim', 50)
  assert svo.parse_sampler('dpmpp20') == ('dpmpp', 20)
  for bad in ('euler50', 'ddpm', 'ddim0'):
    with pytest.raises(ValueError, match='ddpmN, ddimN or dpmppN'):
      svo.parse_sampler(bad)


def test_step_noise_is_the_noise_ours_ddpm_sampler_draws():
  """A Python loop over ours' own step math fed with step_noise's x_K and noises reproduces p_sample_loop."""
  from framedit_jax.diffusion import create_diffusion
  diffusion = create_diffusion(timestep_respacing='6', learn_sigma=False)
  shape = (2, 3, 4, 4, 2)
  model_fn = lambda x, t: 0.3 * x + 0.01 * t[:, None, None, None, None].astype(x.dtype)
  key = jax.random.PRNGKey(3)
  ours = np.asarray(diffusion.p_sample_loop(model_fn, shape, key))
  x_k, noises = svo.step_noise(key, shape, diffusion.num_timesteps)
  x = jnp.asarray(x_k)
  for i, noise in zip(range(diffusion.num_timesteps - 1, -1, -1), noises):
    t = jnp.full((shape[0],), i, jnp.int32)
    out = diffusion.p_mean_variance(diffusion.apply_model(model_fn, x, t, None), x, t)
    x = out['mean'] + float(i != 0) * jnp.exp(0.5 * out['log_variance']) * noise
  assert float(np.abs(ours).max()) > 0.5
  np.testing.assert_allclose(np.asarray(x), ours, rtol=1e-5, atol=1e-5)


def test_noise_queue_hands_out_the_noises_in_order_and_forwards_the_rest():
  a, b = torch.zeros(2, 3), torch.ones(2, 3)
  q = svo._NoiseQueue(torch, [a, b])
  assert q.randn_like(torch.empty(2, 3)) is a and q.randn_like(torch.empty(2, 3)) is b
  assert q.float32 is torch.float32 and q.tensor([1.0]).shape == (1,)
  with pytest.raises(RuntimeError, match='more noises'):
    q.randn_like(torch.empty(2, 3))
  with pytest.raises(RuntimeError, match=r'noise \(2, 3\) for x \(3, 3\)'):
    svo._NoiseQueue(torch, [a]).randn_like(torch.empty(3, 3))


@pytest.mark.skipif(not os.path.isdir(os.path.join(OFFICIAL_SRC, 'models')),
                    reason='needs the official FrameDiT code: set FRAMEDIT_OFFICIAL_SRC to its checkout root '
                           '(not part of this repo)')
def test_tiny_end_to_end_same_samples(tmp_path):
  out = tmp_path / 'r.jsonl'
  argv = ['--official-src', OFFICIAL_SRC, '--designs', 'local', '--frames', '4', '--depth', '2', '--latent', '8',
          '--batches', '2', '--samplers', 'ddpm4,ddim3,dpmpp2', '--out', str(out),
          '--ours-override', 'hidden_size=32', '--ours-override', 'num_heads=2']
  records = svo.main(argv, pin_threads=False)
  lines = [json.loads(x) for x in out.read_text().splitlines()]
  assert lines[0]['header'] and lines[1:] == records
  assert [r['sampler'] for r in records] == ['ddpm4', 'ddim3', 'dpmpp2']
  for r in records[:2]:  # same weights and noise -> the same sample (fp32)
    assert r['official_max_abs'] > 0.5 and r['rel_diff'] < 1e-4, r
    assert r['ratio'] == pytest.approx(r['ours_call_s'] / r['official_call_s'], rel=1e-2)
  assert records[2]['ours_max_abs'] > 0.5 and 'official_call_s' not in records[2]

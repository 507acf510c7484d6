"""The one sampling path: registry == the loops it names with hand-computed guidance, one compile across params,
text guidance on a real T2V model, one-line config errors, and `launch/sample.py --prompt` for a T2V checkpoint."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from configs import default
from framedit_jax import diffusion as fd
from framedit_jax.diffusion.guidance import guided_model_fn
from framedit_jax.diffusion.samplers import validate_sample_config
from framedit_jax.train import generate as gen

SHAPE = (2, 2, 3, 3, 4)  # (B, T, H, W, C)
C = SHAPE[-1]
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(sampler, num_steps=4, objective='iddpm', cfg_scale=3.0, **diffusion):
  config = default.get_config()
  config.diffusion.objective = objective
  config.diffusion.learn_sigma = objective == 'iddpm'
  config.diffusion.update(diffusion)
  config.sample.sampler, config.sample.num_steps, config.sample.cfg_scale = sampler, num_steps, cfg_scale
  return config


def _toy_apply(params, x, t, y):
  """A nonlinear stand-in model (ε and, for learn_sigma, variance channels) depending on params, x, t and y."""
  s = jnp.sin(0.01 * t.astype(jnp.float32))[:, None, None, None, None]
  eps = params['w'] * jnp.tanh(x) + s + 0.1 * y.astype(jnp.float32)[:, None, None, None, None]
  return jnp.concatenate([eps, jnp.tanh(x + s)], -1)


def _hand_guided(params, y, null, s, channels):
  """cond and uncond from two separate calls; eps = u + s (c - u) on the first C channels, rest from cond."""
  def fn(x, t):
    c_out = _toy_apply(params, x, t, y)
    u_out = _toy_apply(params, x, t, jnp.full_like(y, null))
    eps = u_out[..., :C] + s * (c_out[..., :C] - u_out[..., :C])
    return jnp.concatenate([eps, c_out[..., C:]], -1)[..., :channels]
  return fn


@pytest.mark.parametrize('objective,sampler', [('iddpm', 'ddpm'), ('iddpm', 'ddim'), ('iddpm', 'euler'),
                                               ('iddpm', 'dpmpp_2m'), ('rectified_flow', 'euler')])
def test_registry_sampler_equals_named_loop_with_hand_guidance(objective, sampler):
  config = _config(sampler, objective=objective)
  if sampler == 'ddim':
    config.sample.ddim_eta = 0.5
  params, y, key = {'w': jnp.float32(0.7)}, jnp.array([1, 2]), jax.random.PRNGKey(4)
  got = gen.Sampler(lambda p, x, t, y: _toy_apply(p, x, t, y)[..., :(2 * C if objective == 'iddpm' else C)],
                    config, C)(params, key, SHAPE, {'y': y}, {'y': 5})
  hand = _hand_guided(params, y, 5, 3.0, 2 * C if objective == 'iddpm' else C)
  ab = fd.create_diffusion('').alphas_cumprod
  if objective == 'rectified_flow':
    from framedit_jax.diffusion.rectified_flow import RectifiedFlow
    want = RectifiedFlow(num_sample_steps=4).euler_sample_loop(hand, SHAPE, key)
  elif sampler == 'ddpm':
    want = fd.create_diffusion('4').p_sample_loop(hand, SHAPE, key)
  elif sampler == 'ddim':
    want = fd.create_diffusion('ddim4').ddim_sample_loop(hand, SHAPE, key, eta=0.5)
  elif sampler == 'euler':
    want = fd.euler_sample_loop(ab, hand, SHAPE, key, num_steps=4)
  else:
    want = fd.dpmpp_2m_sample_loop(ab, hand, SHAPE, key, num_steps=4)
  scale = float(jnp.abs(want).max())
  assert scale > 0.1
  np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-5 * scale)
  unguided = gen.Sampler(lambda p, x, t, y: _toy_apply(p, x, t, y), config, C)(params, key, SHAPE, {'y': y})
  assert float(jnp.abs(unguided - got).max()) > 1e-3 * scale  # guidance changes the sample


def test_one_compile_across_params_and_one_per_shape():
  traces = []

  def apply(params, x, t, y):
    traces.append(x.shape)
    return _toy_apply(params, x, t, y)
  sampler = gen.Sampler(apply, _config('ddim', num_steps=5), C)
  y, key = jnp.array([1, 2]), jax.random.PRNGKey(0)
  a = sampler({'w': jnp.float32(0.5)}, key, SHAPE, {'y': y}, {'y': 3})
  b = sampler({'w': jnp.float32(0.9)}, key, SHAPE, {'y': y}, {'y': 3})
  assert float(jnp.abs(a - b).max()) > 1e-3  # the new params are used, not a stale closure
  assert sampler.num_compiles() == 1 and len(traces) == 1  # one trace (2B batch inside the scan) for both calls
  sampler({'w': jnp.float32(0.9)}, key, (1,) + SHAPE[1:], {'y': y[:1]}, {'y': 3})
  assert sampler.num_compiles() == 2 and len(traces) == 2


def _tiny_t2v():
  from framedit_jax.models.t2v import get_t2v_model
  o = dict(num_layers=1, num_attention_heads=2, attention_head_dim=8, cross_attention_dim=16, patch_size=2,
           caption_channels=32, in_channels=3, out_channels=6, sample_size=4, video_length=2, dtype='float32')
  m = get_t2v_model('LatteT2V', **o)
  text = jnp.zeros((1, 5, 32))
  p = m.init(jax.random.PRNGKey(0), jnp.zeros((1, 2, 4, 4, 3)), jnp.zeros((1,), jnp.int32), text)['params']
  leaves, tree = jax.tree.flatten(p)  # away from the zero-init output layer
  p = jax.tree.unflatten(tree, [v + 0.2 * jax.random.normal(jax.random.PRNGKey(i), v.shape)
                                for i, v in enumerate(leaves)])
  return m, p, o


def test_text_guidance_equals_hand_computed_eps():
  m, p, _ = _tiny_t2v()
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 2, 4, 4, 3))
  t = jnp.array([10, 700])
  text = jax.random.normal(jax.random.PRNGKey(2), (2, 5, 32))
  mask = jnp.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], jnp.int32)
  null_text, null_mask = jax.random.normal(jax.random.PRNGKey(3), (5, 32)), jnp.array([1, 0, 0, 0, 0], jnp.int32)
  apply = lambda x, t, **c: gen.text_apply_fn(m)(p, x, t, **c)
  got = guided_model_fn(apply, {'text': text, 'mask': mask}, {'text': null_text, 'mask': null_mask}, 4.0, 3)(x, t)
  cond = m.apply({'params': p}, x, t, text, mask)
  unc = m.apply({'params': p}, x, t, jnp.broadcast_to(null_text, text.shape), jnp.broadcast_to(null_mask, mask.shape))
  assert float(jnp.abs(cond - unc).max()) > 1e-2
  np.testing.assert_allclose(got[..., :3], unc[..., :3] + 4.0 * (cond[..., :3] - unc[..., :3]), rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(got[..., 3:], cond[..., 3:], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('change,field', [
    (dict(sampler='ddpm', objective='rectified_flow'), 'config.sample.sampler'),
    (dict(sampler='dpmpp_3m'), 'config.sample.sampler'),
    (dict(sampler='euler', predict='v'), 'config.diffusion.predict'),
    (dict(sampler='ddim', num_steps=300), 'config.sample.num_steps=300'),
    (dict(sampler='ddpm', num_steps=0), 'config.sample.num_steps=0'),
    (dict(sampler='ddpm', num_steps=2000), 'config.sample.num_steps=2000'),
    (dict(sampler='euler', ddim_eta=0.5), 'config.sample.ddim_eta'),
    (dict(sampler='ddim', cfg_scale=-1.0), 'config.sample.cfg_scale'),
    (dict(sampler='ddim', cfg_scale='x'), 'config.sample.cfg_scale'),
])
def test_invalid_sample_config_is_one_line_naming_the_field(change, field):
  change = dict(change)
  config = _config(change.pop('sampler'), objective=change.pop('objective', 'iddpm'))
  for k, v in change.items():
    group = config.diffusion if k == 'predict' else config.sample
    del group[k]  # (a ConfigDict field keeps its type; a fresh one takes any)
    group[k] = v
  with pytest.raises(ValueError) as err:
    validate_sample_config(config)
  assert field in str(err.value) and '\n' not in str(err.value)


def test_sample_cli_text_to_video_prompts_equal_in_process(tmp_path):
  from framedit_jax.convert import checkpoint_io
  from framedit_jax.text import TextEncoder
  from framedit_jax.text.demo import make_demo_text_encoder
  m, p, o = _tiny_t2v()
  prompts = ['a red ball', 'a green tree in the rain']
  root = make_demo_text_encoder(prompts + ['a blue sky'], str(tmp_path / 'text'))
  checkpoint_io.save_params(jax.device_get(p), str(tmp_path / 'ckpt'), 'LatteT2V', o)
  (tmp_path / 'prompts.txt').write_text(prompts[1] + '\n\n')
  sets = {'sample.sampler': 'dpmpp_2m', 'sample.num_steps': 3, 'sample.cfg_scale': 4.0, 'sample.batch_size': 2,
          'text.root': root}
  args = [f'--config={REPO}/configs/t2v_demo.py', f'--checkpoint={tmp_path / "ckpt"}', f'--prompt={prompts[0]}',
          f'--prompts_file={tmp_path / "prompts.txt"}', f'--out_dir={tmp_path / "out"}', '--seed=2', '--save_npy']
  args += [f'--config.{k}={v}' for k, v in sets.items()]
  env = dict(os.environ, PYTHONPATH=REPO)
  r = subprocess.run([sys.executable, os.path.join(REPO, 'launch', 'sample.py'), *args], env=env,
                     capture_output=True, text=True, timeout=600, cwd=REPO)
  assert r.returncode == 0, r.stderr[-3000:]
  names = sorted(f for f in os.listdir(tmp_path / 'out') if f.endswith('.npy'))
  assert names == ['000000-a_red_ball.npy', '000001-a_green_tree_in_the_rain.npy']
  got = np.stack([np.load(tmp_path / 'out' / n) for n in names])
  # In process: the same prompts, the empty-prompt null embedding, the same sampler and seed.
  from configs import t2v_demo
  config = t2v_demo.get_config()
  for k, v in sets.items():
    group, field = k.split('.')
    config[group][field] = v
  encoder = TextEncoder.from_pretrained(root, int(config.text.max_length), dtype='float32')
  cond, null_cond = gen.text_condition(encoder, prompts, 4.0)
  want = gen.generate(gen.Sampler(gen.text_apply_fn(m), config, 3), p, jax.random.fold_in(jax.random.PRNGKey(2), 0),
                      (2, 2, 4, 4, 3), cond, null_cond)
  np.testing.assert_array_equal(got, gen.to_uint8(want))
  assert np.abs(got[0].astype(int) - got[1].astype(int)).max() > 10  # the prompts steer the samples
  assert os.path.isfile(tmp_path / 'out' / 'grid.mp4') and os.path.isfile(tmp_path / 'out' / 'strip.png')
  bad = subprocess.run([sys.executable, os.path.join(REPO, 'launch', 'sample.py'), *args[:2], '--prompt=x',
                        '--config.sample.sampler=ddpmm', f'--out_dir={tmp_path / "bad"}'], env=env,
                       capture_output=True, text=True, timeout=600, cwd=REPO)
  assert bad.returncode == 1 and bad.stderr.strip().splitlines()[-1].startswith('error: config.sample.sampler')

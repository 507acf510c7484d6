"""Backbone invariances: IMG frames skip temporal blocks, kernels/remat/bf16 agree with the fp32 einsum model."""

import jax
import jax.numpy as jnp
import numpy as np

from framedit_jax.models import get_model

TINY = dict(depth=2, hidden_size=32, num_heads=2, input_size=8, num_frames=4, qk_col_dim=8, v_col_dim=32,
            num_col_heads=4)


def _random_params(module, *args, seed=7, scale=0.1):
  """Params with the structure of `module.init(*args)`, filled with N(0, scale^2) on the host (no init compile)."""
  shapes = jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), *args)['params'])
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda s: jnp.asarray(rng.standard_normal(s.shape, np.float32) * scale), shapes)


def _setup(name='FrameDiTH-S/64-256/2-concat', frames=4, **kw):
  cfg = {**TINY, **kw}
  if not name.startswith('FrameDiT'):
    cfg = {k: v for k, v in cfg.items() if 'col' not in k}
  m = get_model(name, **cfg)
  x = jax.random.normal(jax.random.PRNGKey(0), (2, frames, 8, 8, 4))
  t = jnp.array([5, 900])
  y = jnp.array([0, 1]) if m.num_classes else None
  params = _random_params(m, x, t, y)
  return m, params, x, t


def test_image_frames_skip_temporal_blocks():
  """use_image_num=2: image outputs do not depend on the video frames; video outputs do not depend on images."""
  m, params, x, t = _setup('FrameDiTHIMG-S/64-256/2-concat', frames=6, use_image_num=2)
  f = jax.jit(lambda x: m.apply({'params': params}, x, t))
  out = f(x)
  x_video_changed = x.at[:, :4].add(1.0)
  x_image_changed = x.at[:, 4:].add(1.0)
  out_v, out_i = f(x_video_changed), f(x_image_changed)
  np.testing.assert_allclose(out_v[:, 4:], out[:, 4:], atol=1e-6)  # images unaffected by video frames
  assert float(jnp.abs(out_v[:, :4] - out[:, :4]).max()) > 1e-2
  np.testing.assert_allclose(out_i[:, :4], out[:, :4], atol=1e-6)  # video unaffected by images
  # An image frame is processed like a 1-frame clip without temporal mixing: swapping the two images swaps outputs.
  swapped = f(x[:, jnp.array([0, 1, 2, 3, 5, 4])])
  np.testing.assert_allclose(swapped[:, 4], out[:, 5], atol=1e-5)


def test_xla_kernel_and_bf16_agree_with_fp32_einsum():
  m, params, x, t = _setup()
  ref = jax.jit(lambda p: m.apply({'params': p}, x, t))(params)
  assert float(jnp.abs(ref).max()) > 0.1
  m_xla = get_model('FrameDiTH-S/64-256/2-concat', **TINY, attention_kernel='xla')  # == 'cudnn' off-GPU
  np.testing.assert_allclose(jax.jit(lambda p: m_xla.apply({'params': p}, x, t))(params), ref, atol=1e-5)
  # bf16 compute: fp32 params and output, close to fp32 (relative error ~ bf16 precision).
  m_bf16 = get_model('FrameDiTH-S/64-256/2-concat', **TINY, dtype='bfloat16')
  out = jax.jit(lambda p: m_bf16.apply({'params': p}, x, t))(params)
  assert out.dtype == jnp.float32
  rel = float(jnp.linalg.norm(out - ref) / jnp.linalg.norm(ref))
  assert 1e-4 < rel < 3e-2, rel
  p_bf16 = jax.eval_shape(lambda: m_bf16.init(jax.random.PRNGKey(0), x, t)['params'])
  assert {a.dtype for a in jax.tree.leaves(p_bf16)} == {jnp.dtype(jnp.float32)}


def test_remat_same_output_and_checkpointed_gradient():
  tiny = {k: v for k, v in TINY.items() if 'col' not in k}
  m = get_model('Latte-S/2', **tiny)
  m_remat = get_model('Latte-S/2', **tiny, remat=True)
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 4, 8, 8, 4))
  t = jnp.array([5, 900])
  params = _random_params(m, x, t)
  np.testing.assert_allclose(m_remat.apply({'params': params}, x, t), m.apply({'params': params}, x, t), atol=1e-6)
  loss = lambda mod: jax.grad(lambda p: jnp.sum(mod.apply({'params': p}, x, t)**2))
  jaxpr_remat = str(jax.make_jaxpr(loss(m_remat))(params))
  jaxpr_plain = str(jax.make_jaxpr(loss(m))(params))
  assert jaxpr_remat.count('checkpoint') + jaxpr_remat.count('remat') >= 2  # one per block
  assert 'checkpoint' not in jaxpr_plain and 'remat' not in jaxpr_plain


def test_dit3d_attends_over_all_tokens():
  """DiT3D mixes every (frame, token) pair inside one block: changing one patch of the last frame changes the
  output of every patch of frame 0 (Latte with one spatial block would leave frame 0 untouched)."""
  tiny = {k: v for k, v in TINY.items() if 'col' not in k}
  m = get_model('DiT3D-S/2', **{**tiny, 'depth': 1})
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 4, 8, 8, 4))
  t = jnp.array([5, 900])
  params = _random_params(m, x, t)
  out = m.apply({'params': params}, x, t)
  out2 = m.apply({'params': params}, x.at[:, 3, 6:, 6:].add(1.0), t)
  change = jnp.abs(out2 - out)[:, 0].reshape(2, 4, 2, 4, 2, 8).max(axis=(2, 4, 5))  # per patch of frame 0
  assert float(change.min()) > 1e-6


def test_image_labels_condition_only_image_frames():
  """IMG training: y_image labels condition the image frames (spatial blocks, final layer) and nothing else."""
  m, params, x, t = _setup('LatteIMG-S/2', frames=6, use_image_num=2, num_classes=3)
  y = jnp.array([0, 1])
  out_a = m.apply({'params': params}, x, t, y, y_image=jnp.array([[0, 1], [2, 2]]))
  out_b = m.apply({'params': params}, x, t, y, y_image=jnp.array([[2, 1], [2, 0]]))
  np.testing.assert_allclose(out_a[:, :4], out_b[:, :4], atol=1e-6)
  np.testing.assert_allclose(out_a[1, 4], out_b[1, 4], atol=1e-6)  # same image label -> same output
  assert float(jnp.abs(out_a[0, 4] - out_b[0, 4]).max()) > 1e-3
  assert float(jnp.abs(out_a[1, 5] - out_b[1, 5]).max()) > 1e-3
  out_default = m.apply({'params': params}, x, t, y)  # y_image defaults to the clip label
  out_same = m.apply({'params': params}, x, t, y, y_image=jnp.stack([y, y], axis=1))
  np.testing.assert_allclose(out_default, out_same, atol=1e-6)

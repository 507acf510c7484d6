"""Model registry, DiT init (exact zero output), parameter counts and classifier-free guidance."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from framedit_jax.diffusion.guidance import guided_model_fn
from framedit_jax.models import get_model, list_models
from framedit_jax.train.generate import class_apply_fn

TINY = dict(depth=2, hidden_size=32, num_heads=2, input_size=8, num_frames=4)
TINY_MATRIX = dict(TINY, qk_col_dim=8, v_col_dim=32, num_col_heads=4)
NAMES = ['Latte-S/2', 'DiT3D-S/2', 'FrameDiTG-S/64-256/2', 'FrameDiTH-S/64-256/2-concat',
         'FrameDiTH-S/64-256/2-softmax_u-gated']


def _tiny(name, **kw):
  base = TINY_MATRIX if name.startswith('FrameDiT') else TINY
  return get_model(name, **{**base, **kw})


def _inputs(b=2, t=4, c=4, size=8, seed=0):
  x = jax.random.normal(jax.random.PRNGKey(seed), (b, t, size, size, c))
  return x, jnp.array([3, 999][:b] + [7] * max(0, b - 2)), jnp.array([0, 2][:b] + [1] * max(0, b - 2))


@pytest.mark.parametrize('name', NAMES)
def test_untrained_model_outputs_exact_zero(name):
  m = _tiny(name, num_classes=3)
  x, t, y = _inputs()
  params = m.init({'params': jax.random.PRNGKey(1), 'dropout': jax.random.PRNGKey(2)}, x, t, y)['params']
  out = m.apply({'params': params}, x, t, y, train=True, rngs={'dropout': jax.random.PRNGKey(3)})
  assert out.shape == (2, 4, 8, 8, 8) and out.dtype == jnp.float32
  np.testing.assert_array_equal(np.asarray(out), 0.0)
  # DiT init: adaLN last linear and final linear are zero, timestep MLP ~ N(0, 0.02).
  np.testing.assert_array_equal(params['blocks_1']['adaLN_modulation']['kernel'], 0.0)
  np.testing.assert_array_equal(params['final_layer']['linear']['kernel'], 0.0)
  assert abs(float(jnp.std(params['t_embedder']['mlp_0']['kernel'])) - 0.02) < 0.002
  # Patch conv: xavier on the flattened (C*p*p, D) view -> var = 2 / (fan_in + fan_out) / 3 * 3 = bound^2 / 3.
  k = params['x_embedder']['proj']['kernel']
  bound = np.sqrt(6.0 / (2 * 2 * 4 + 32))
  assert float(jnp.abs(k).max()) <= bound and float(jnp.abs(k).max()) > 0.8 * bound


@pytest.mark.parametrize('size,expected_m', [('S', 32.48), ('B', 129.55), ('L', 456.82), ('XL', 673.68)])
def test_latte_param_counts_match_design(size, expected_m):
  """Trainable params of the official `models/latte.py` at 256^2 (latent 32, p=2, learn_sigma, unconditional, T=16).

  The frozen sin-cos pos/temp embeddings are constants, not params, so the count is the trainable count.
  """
  m = get_model(f'Latte-{size}/2')
  x = jax.ShapeDtypeStruct((1, 16, 32, 32, 4), jnp.float32)
  t = jax.ShapeDtypeStruct((1,), jnp.int32)
  shapes = jax.eval_shape(lambda x, t: m.init({'params': jax.random.PRNGKey(0)}, x, t), x, t)
  n = sum(int(np.prod(a.shape)) for a in jax.tree.leaves(shapes))
  assert round(n / 1e6, 2) == expected_m


def test_cfg_scale_one_equals_conditional_and_guides_eps_only():
  m = _tiny('FrameDiTH-S/64-256/2-concat', num_classes=3)
  x, t, y = _inputs(b=1)
  shapes = jax.eval_shape(lambda: m.init(jax.random.PRNGKey(0), x, t, y)['params'])
  rng = np.random.default_rng(5)
  params = jax.tree.map(lambda s: jnp.asarray(rng.standard_normal(s.shape, np.float32) * 0.1), shapes)
  both = m.apply({'params': params}, jnp.concatenate([x, x]), jnp.concatenate([t, t]), jnp.array([y[0], 3]))
  cond, uncond = both[:1], both[1:]
  assert float(jnp.abs(cond - uncond).max()) > 1e-3
  apply = lambda x, t, **c: class_apply_fn(m)(params, x, t, **c)
  cfg = lambda s: guided_model_fn(apply, {'y': y}, {'y': m.num_classes}, s, m.in_channels)(x, t)
  np.testing.assert_allclose(cfg(1.0), cond, atol=1e-5)
  guided = cfg(4.0)
  np.testing.assert_allclose(guided[..., :4], uncond[..., :4] + 4.0 * (cond[..., :4] - uncond[..., :4]), atol=1e-4)
  np.testing.assert_allclose(guided[..., 4:], cond[..., 4:], atol=1e-5)
  assert guided.shape == (1, 4, 8, 8, 8)


def test_label_dropout_rate_and_null_row():
  m = _tiny('Latte-S/2', num_classes=3, class_dropout_prob=0.5)
  from framedit_jax.models.embeddings import LabelEmbedder
  emb = LabelEmbedder(3, 8, 0.5)
  p = emb.init({'params': jax.random.PRNGKey(0)}, jnp.zeros((4,), jnp.int32))['params']
  assert p['embedding_table']['embedding'].shape == (4, 8)  # num_classes + null row
  labels = jnp.zeros((4000,), jnp.int32)
  out = emb.apply({'params': p}, labels, train=True, rngs={'dropout': jax.random.PRNGKey(1)})
  null_frac = float(jnp.mean(jnp.all(out == p['embedding_table']['embedding'][3], axis=-1)))
  assert abs(null_frac - 0.5) < 0.04
  assert m.num_classes == 3 and m.in_channels == 4 and m.learn_sigma


def test_registry_names_and_errors():
  names = list_models()
  for n in ['Latte-XL/2', 'Latte-S/8', 'DiT3D-M/4', 'FrameDiTG-XL/128-512/2', 'FrameDiTG-B/64-256/4-softmax_u',
            'FrameDiTH-XL/128-512/2-concat', 'FrameDiTH-XL/128-512/2-gated', 'FrameDiTHIMG-XL/128-512/2-concat',
            'LatteIMG-XL/2', 'FrameDiTGIMG-S/64-256/2', 'FusedMatLatteIMG-XL/128-512/2-concat']:
    assert n in names
  with pytest.raises(KeyError, match='Latte-XL/2'):
    get_model('Latte-XL2')
  with pytest.raises(TypeError, match='fuse_mode'):
    get_model('Latte-S/2', fuse_mode='gated')
  with pytest.raises(TypeError, match='bogus'):
    get_model('Latte-S/2', bogus=1)
  m = get_model('FrameDiTH-XL/128-512/2-gated', dtype='bfloat16')
  assert (m.fuse_mode, m.qk_col_dim, m.v_col_dim, m.num_col_heads, m.depth) == ('gated', 128, 512, 64, 28)

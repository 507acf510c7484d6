"""Latte design space (Latte §3.2-3.3): each option's defining property, by autodiff dependency or invariance."""

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from framedit_jax.models import get_model
from framedit_jax.models.latte_design import rope

TINY = dict(hidden_size=32, num_heads=2, input_size=8, num_frames=4, learn_sigma=False)
T, G = 4, 4  # frames, patch grid (8 / p=2): N = 16 tokens per frame


def _random_params(model, seed=0):
  x = jnp.zeros((1, T, 8, 8, 4))
  params = model.init({'params': jax.random.PRNGKey(seed)}, x, jnp.zeros((1,), jnp.int32))['params']
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.PRNGKey(seed + 1), len(leaves))  # no zero-init left: every path is live
  return jax.tree.unflatten(tree, [l + 0.1 * jax.random.normal(k, l.shape) for k, l in zip(keys, leaves)])


def _dependency(model, params, blocks, t0, n0):
  """{block: bool (T, N)}: which input patches (frame t', patch n') token (t0, n0) after `block` depends on."""
  def f(x):
    _, inter = model.apply({'params': params}, x, jnp.array([300]), capture_intermediates=True,
                           mutable=['intermediates'])
    return jnp.stack([inter['intermediates'][b]['__call__'][0][0, t0, n0].sum() for b in blocks])
  x = jax.random.normal(jax.random.PRNGKey(5), (1, T, 8, 8, 4))
  jac = np.abs(np.asarray(jax.jacrev(f)(x)))[:, 0]  # (len(blocks), T, H, W, C)
  out = {}
  for b, g in zip(blocks, jac):
    g = g.reshape(T, G, 2, G, 2, 4).sum(axis=(2, 4, 5)).reshape(T, G * G)
    out[b] = g > 1e-6 * g.max()
  return out


def _frame(t0):
  m = np.zeros((T, G * G), bool)
  m[t0] = True
  return m


def _cross(t0, n0):
  m = _frame(t0)
  m[:, n0] = True
  return m


@pytest.mark.parametrize('variant,depth,expected', [
    (1, 2, {'blocks_0': 'frame', 'blocks_1': 'all'}),  # interleaved: spatial block sees its frame, then temporal
    (2, 4, {'blocks_1': 'frame', 'blocks_2': 'all'}),  # late fusion: two spatial blocks still see one frame
    (3, 2, {'blocks_0': 'all'}),  # spatial then temporal attention inside one block
    (4, 2, {'blocks_0': 'cross'}),  # half the heads spatial, half temporal: own frame + own position only
])
def test_variants_by_autodiff_dependency(variant, depth, expected):
  model = get_model(f'LatteV{variant}-S/2', depth=depth, **TINY)
  deps = _dependency(model, _random_params(model), list(expected), t0=1, n0=5)
  for block, kind in expected.items():
    want = {'frame': _frame(1), 'all': np.ones((T, G * G), bool), 'cross': _cross(1, 5)}[kind]
    np.testing.assert_array_equal(deps[block], want, err_msg=block)


def test_tubelet_embedding_and_transposed_conv_decoder_are_tubelet_local():
  """depth 0: output frames {0, 1} of patch n come from input frames {0, 1} of patch n only (s = 2)."""
  model = get_model('LatteV1-S/2', depth=0, patch_embed='tubelet', tubelet_size=2, **TINY)
  params = _random_params(model)
  x = jax.random.normal(jax.random.PRNGKey(5), (1, T, 8, 8, 4))
  for t_out in (0, 1, 3):
    f = lambda x: model.apply({'params': params}, x, jnp.array([300]))[0, t_out, 2:4, 4:6].sum()  # patch 6
    g = np.abs(np.asarray(jax.grad(f)(x)))[0].reshape(T, G, 2, G, 2, 4).sum(axis=(2, 4, 5)).reshape(T, G * G)
    want = np.zeros((T, G * G), bool)
    want[2 * (t_out // 2):2 * (t_out // 2) + 2, 6] = True
    np.testing.assert_array_equal(g > 1e-6 * g.max(), want)
  assert params['x_embedder']['kernel'].shape == (2, 2, 2, 4, 32)  # (s, p, p, C, D)


def test_s_adaln_vs_all_tokens_conditioning():
  """With every attention output projection zeroed, only S-AdaLN still carries t to the output: all-tokens
  conditioning reaches the tokens through attention alone."""
  x = jax.random.normal(jax.random.PRNGKey(5), (1, T, 8, 8, 4))
  for cond, depends in (('adaln', True), ('tokens', False)):
    model = get_model('LatteV1-S/2', depth=2, conditioning=cond, **TINY)
    params = _random_params(model)
    assert any('adaLN_modulation' in b for b in (params['blocks_0'], params['blocks_1'])) == (cond == 'adaln')
    out = lambda p, t: np.asarray(model.apply({'params': p}, x, jnp.array([t])))
    assert np.abs(out(params, 10) - out(params, 900)).max() > 1e-3  # t matters in both
    for b in ('blocks_0', 'blocks_1'):
      params[b]['attn']['proj'] = jax.tree.map(jnp.zeros_like, params[b]['attn']['proj'])
    assert (np.abs(out(params, 10) - out(params, 900)).max() > 1e-3) == depends


def test_rope_scores_are_invariant_to_a_shift_of_all_frame_indices():
  q, k = jax.random.normal(jax.random.PRNGKey(0), (2, 2, 6, 2, 16))
  pos = jnp.arange(6)
  scores = lambda p: np.asarray(jnp.einsum('bqhd,bkhd->bhqk', rope(q, p), rope(k, p)))
  np.testing.assert_allclose(scores(pos + 37), scores(pos), atol=2e-4)
  assert np.abs(scores(pos * 2) - scores(pos)).max() > 1e-2  # relative offsets do matter


def test_bad_options_are_one_line_errors():
  with pytest.raises(ValueError, match='tubelet_size'):
    m = get_model('LatteV1-S/2', depth=2, patch_embed='tubelet', tubelet_size=3, **TINY)
    m.init({'params': jax.random.PRNGKey(0)}, jnp.zeros((1, T, 8, 8, 4)), jnp.zeros((1,), jnp.int32))
  with pytest.raises(TypeError, match='unknown override'):
    get_model('LatteV2-S/2', variant_typo=1)
  with pytest.raises(KeyError):
    get_model('LatteV5-S/2')


@pytest.mark.parametrize('variant,opts', [
    # Every variant, and every value of every option at least once.
    (1, dict(patch_embed='tubelet', tubelet_size=2, conditioning='adaln', temporal_pos='rope')),
    (2, dict(patch_embed='uniform', conditioning='tokens', temporal_pos='absolute')),
    (3, dict(patch_embed='tubelet', tubelet_size=2, conditioning='tokens', temporal_pos='rope')),
    (4, dict(patch_embed='uniform', conditioning='adaln', temporal_pos='absolute')),
])
def test_every_option_trains_two_steps_from_a_config(variant, opts):
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  from configs import demo
  from framedit_jax.parallel import mesh as mesh_lib
  from framedit_jax.train.experiment import build_model, init_state, training_diffusion
  from framedit_jax.train.optimizer import make_optimizer
  from framedit_jax.train.step import make_train_step
  config = demo.get_config()
  config.model.name = f'LatteV{variant}-S/4'
  config.model.overrides = dict(hidden_size=16, depth=2, num_heads=2, **opts)
  config.data.image_size, config.data.num_frames, config.data.global_batch_size = 8, 2, 2
  config.optim.warmup_steps = 0  # the demo warms up from lr 0: the first update would be zero
  model = build_model(config, 3, 8)
  optimizer = make_optimizer(config.optim)
  mesh = mesh_lib.make_mesh(config.mesh)
  with jax.set_mesh(mesh):
    state, _ = init_state(config, model, optimizer, mesh, (2, 8, 8, 3))
  step = make_train_step(model, training_diffusion(config), optimizer, config)
  batch = {'video': jax.random.uniform(jax.random.PRNGKey(0), (2, 2, 8, 8, 3), minval=-1, maxval=1),
           'label': jnp.zeros((2,), jnp.int32)}
  for _ in range(2):
    state, metrics = step(state, batch)
    assert float(metrics['finite']) == 1.0 and float(metrics['update_norm']) > 0
  assert int(state.step) == 2

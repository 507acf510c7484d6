"""VideoDiT 2D->3D (videodit.md §3.2): the converted model equals the image DiT on a clip of identical frames."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from framedit_jax.convert.init_from_image_dit import init_videodit_from_dit
from framedit_jax.models import get_model
from framedit_jax.models.image_dit import get_image_dit
from framedit_jax.models.videodit import get_3d_sincos_pos_embed

TINY = dict(hidden_size=32, depth=2, num_heads=2, input_size=8, num_classes=5)


@pytest.fixture(scope='module')
def dit():
  module = get_image_dit('DiT-S/2', **TINY)
  params = module.init({'params': jax.random.PRNGKey(0)}, jnp.zeros((1, 8, 8, 4)), jnp.zeros((1,), jnp.int32),
                       jnp.zeros((1,), jnp.int32))['params']
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.PRNGKey(1), len(leaves))  # no leaf left at its zero init
  params = jax.tree.unflatten(tree, [l + 0.1 * jax.random.normal(k, l.shape) for k, l in zip(keys, leaves)])
  return module, params


@pytest.mark.parametrize('frames', [1, 4, 16])
def test_identical_frames_give_the_image_dit_output(dit, frames):
  dit_module, dit_params = dit
  video = get_model('VideoDiT-S/2', num_frames=frames, **TINY)
  params, report = init_videodit_from_dit(dit_params, dit_module, video, seed=2)
  assert report['fresh'][:2] == ['proj_3d', 'x_embedder_3d']  # the only new params: the 3D-patchify branch
  frame = jax.random.normal(jax.random.PRNGKey(3), (2, 8, 8, 4))
  t, y = jnp.array([10, 700]), jnp.array([1, 5])
  ref = np.asarray(dit_module.apply({'params': dit_params}, frame, t, y))
  out = np.asarray(video.apply({'params': params}, jnp.repeat(frame[:, None], frames, axis=1), t, y))
  assert np.abs(ref).max() > 0.5
  for i in range(frames):
    np.testing.assert_allclose(out[:, i], ref, rtol=0, atol=2e-5)


def test_no_new_attention_params_and_the_3d_branch_sees_time(dit):
  dit_module, dit_params = dit
  video = get_model('VideoDiT-S/2', num_frames=4, **TINY)
  params, _ = init_videodit_from_dit(dit_params, dit_module, video)
  own = {k: v for k, v in params.items() if k not in ('x_embedder_3d', 'proj_3d')}
  assert jax.tree.structure(own) == jax.tree.structure(jax.tree.map(np.asarray, dict(dit_params)))
  assert not np.asarray(params['proj_3d']['kernel']).any()
  # the attention is global over T*N: frame 0's output depends on frame 3's input (autodiff dependency)
  x = jax.random.normal(jax.random.PRNGKey(4), (1, 4, 8, 8, 4))
  f = lambda x3: video.apply({'params': params}, x.at[:, 3].set(x3), jnp.array([500]), jnp.array([0]))[:, 0].sum()
  assert float(jnp.abs(jax.grad(f)(x[:, 3])).max()) > 1e-4
  # a non-zero projection injects the frame index: identical frames now give different outputs per frame
  params['proj_3d']['kernel'] = 0.1 * np.eye(32, dtype=np.float32)
  frame = jax.random.normal(jax.random.PRNGKey(3), (1, 8, 8, 4))
  out = np.asarray(video.apply({'params': params}, jnp.repeat(frame[:, None], 4, axis=1), jnp.array([500]),
                               jnp.array([0])))
  assert np.abs(out[:, 0] - out[:, 3]).max() > 1e-3


def test_3d_sincos_layout():
  emb = get_3d_sincos_pos_embed(32, 2, 3)  # (T, N, D): [temporal D/4 | spatial 3D/4]
  assert emb.shape == (3, 4, 32)
  np.testing.assert_allclose(emb[2, :, 0], np.sin(2.0))  # first temporal channel: sin(t * 1)
  np.testing.assert_allclose(emb[1, 3, 4], np.cos(1.0))  # first cos channel of the 8 temporal ones
  np.testing.assert_array_equal(emb[0, :, 8:], emb[2, :, 8:])  # spatial part independent of t
  with pytest.raises(ValueError, match='divisible by 16'):
    get_3d_sincos_pos_embed(24, 2, 3)

"""The layout-saving ops of issue 12 compute what they replace: a custom-VJP broadcast and a concat-free Linear."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from framedit_jax.models.batch_broadcast import broadcast_leading
from framedit_jax.models.fusion import ConcatLinear


@pytest.mark.parametrize('lead,shape', [((2, 3), (4, 5)), ((7,), (3,)), ((1, 1, 2), (2, 3, 4))])
def test_broadcast_leading_value_and_grad_match_broadcast_to(lead, shape):
  a = jax.random.normal(jax.random.PRNGKey(0), shape)
  w = jax.random.normal(jax.random.PRNGKey(1), (*lead, *shape))

  def loss(fn, x):
    return jnp.sum(jnp.sin(fn(x)) * w)

  ours = lambda x: broadcast_leading(x, lead)
  ref = lambda x: jnp.broadcast_to(x, (*lead, *shape))
  np.testing.assert_array_equal(np.asarray(ours(a)), np.asarray(ref(a)))
  g_ours = jax.jit(jax.grad(lambda x: loss(ours, x)))(a)
  g_ref = jax.grad(lambda x: loss(ref, x))(a)
  assert float(jnp.max(jnp.abs(g_ref))) > 0.1  # the reference gradient is not trivially zero
  np.testing.assert_allclose(np.asarray(g_ours), np.asarray(g_ref), rtol=1e-5, atol=1e-5)


def test_concat_linear_equals_dense_on_the_concatenation():
  a = jax.random.normal(jax.random.PRNGKey(2), (2, 5, 8))
  b = jax.random.normal(jax.random.PRNGKey(3), (2, 5, 8))
  mod = ConcatLinear(6)
  params = mod.init(jax.random.PRNGKey(4), a, b)
  # Give the bias a nonzero value so that it is checked too.
  params = jax.tree_util.tree_map(lambda p: p + 0.3 if p.ndim == 1 else p, params)
  dense = nn.Dense(6)
  assert jax.tree_util.tree_map(jnp.shape, params) == jax.tree_util.tree_map(
      jnp.shape, dense.init(jax.random.PRNGKey(0), jnp.concatenate([a, b], -1)))
  ours = mod.apply(params, a, b)
  ref = dense.apply(params, jnp.concatenate([a, b], -1))
  np.testing.assert_allclose(np.asarray(ours), np.asarray(ref), rtol=1e-5, atol=1e-5)
  ga = jax.grad(lambda p: jnp.sum(mod.apply(p, a, b) ** 2))(params)
  gr = jax.grad(lambda p: jnp.sum(dense.apply(p, jnp.concatenate([a, b], -1)) ** 2))(params)
  jax.tree_util.tree_map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-4), ga, gr)

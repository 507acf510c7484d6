"""`matmul_vjp` (the XLA-CPU backward for Dense-like matmuls) computes what it replaces: values and gradients of
the plain matmul / einsum, alone and inside every module that takes the `cpu_kernels` switch."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from framedit_jax.models.cpu import matmul_vjp
from framedit_jax.models.attention import Attention, MatrixAttention
from framedit_jax.models.blocks import Mlp
from framedit_jax.models.fusion import HybridTemporalAttention


def _close(a, b, tol=1e-5):
  np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b, np.float32), rtol=tol, atol=tol)


# (K, N, splits): K <= N transposes x for dw, K > N transposes the cotangent (and the product back).
@pytest.mark.parametrize('k,n,splits', [(12, 18, 1), (12, 18, 3), (24, 6, 1), (24, 6, 2), (8, 8, 1)])
def test_matmul_columns_value_and_grads_match_plain_matmul(k, n, splits):
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 7, k))
  w = jax.random.normal(jax.random.PRNGKey(1), (k, n))
  probe = jax.random.normal(jax.random.PRNGKey(2), (2, 7, n))
  ours = lambda x, w: jnp.concatenate(matmul_vjp.matmul_columns(x, w, splits), -1)
  ref = lambda x, w: x @ w
  _close(ours(x, w), ref(x, w))
  loss = lambda f: (lambda x, w: jnp.sum(jnp.sin(f(x, w)) * probe))
  g_ours = jax.jit(jax.grad(loss(ours), argnums=(0, 1)))(x, w)
  g_ref = jax.grad(loss(ref), argnums=(0, 1))(x, w)
  for a, b in zip(g_ours, g_ref):
    assert float(jnp.max(jnp.abs(b))) > 0.1
    _close(a, b, 1e-4)


def test_matmul_columns_bfloat16_grads_match_and_keep_dtype():
  x = jax.random.normal(jax.random.PRNGKey(3), (3, 16)).astype(jnp.bfloat16)
  w = jax.random.normal(jax.random.PRNGKey(4), (16, 8)).astype(jnp.bfloat16)
  gx, gw = jax.grad(lambda x, w: jnp.sum(matmul_vjp.matmul(x, w).astype(jnp.float32) ** 2), argnums=(0, 1))(x, w)
  rx, rw = jax.grad(lambda x, w: jnp.sum((x @ w).astype(jnp.float32) ** 2), argnums=(0, 1))(x, w)
  assert gx.dtype == jnp.bfloat16 and gw.dtype == jnp.bfloat16
  _close(gx, rx, 0.05)
  _close(gw, rw, 0.05)


def test_matmul_columns_rejects_bad_splits():
  with pytest.raises(ValueError, match='splits=4 dividing N'):
    matmul_vjp.matmul_columns(jnp.ones((2, 3)), jnp.ones((3, 6)), 4)


def test_dense_dot_general_passes_other_contractions_through():
  a = jax.random.normal(jax.random.PRNGKey(5), (4, 3, 5))
  b = jax.random.normal(jax.random.PRNGKey(6), (4, 5, 2))
  dims = (((2,), (1,)), ((0,), (0,)))  # a batched matmul: not the Dense form
  _close(matmul_vjp.dense_dot_general(a, b, dims), jax.lax.dot_general(a, b, dims))


def _module_pair_matches(make, *inputs, tol=1e-4):
  """make(flag) -> module; checks equal init, equal outputs and equal param/input gradients for both flags."""
  plain, ours = make(False), make(True)
  key = jax.random.PRNGKey(7)
  params = plain.init(key, *inputs)
  jax.tree_util.tree_map(np.testing.assert_array_equal, params, ours.init(key, *inputs))
  # Nonzero biases and zero-initialised params, so that every gradient path carries signal.
  params = jax.tree_util.tree_map(lambda p: p + 0.05, params)
  _close(ours.apply(params, *inputs), plain.apply(params, *inputs), tol)
  loss = lambda m: (lambda p, *xs: jnp.sum(jnp.tanh(m.apply(p, *xs)) * jnp.cos(m.apply(p, *xs))))
  argnums = tuple(range(len(inputs) + 1))
  g_ours = jax.jit(jax.grad(loss(ours), argnums=argnums))(params, *inputs)
  g_plain = jax.grad(loss(plain), argnums=argnums)(params, *inputs)
  jax.tree_util.tree_map(lambda a, b: _close(a, b, tol), g_ours, g_plain)


def test_mlp_cpu_kernels_equal_plain():
  _module_pair_matches(lambda f: Mlp(24, cpu_kernels=f), jax.random.normal(jax.random.PRNGKey(8), (2, 5, 8)))


def test_attention_cpu_kernels_equal_plain():
  _module_pair_matches(lambda f: Attention(num_heads=4, cpu_kernels=f),
                       jax.random.normal(jax.random.PRNGKey(9), (2, 6, 16)))


@pytest.mark.parametrize('qk,v', [(8, 16), (2, 4)])  # r > N (U^T (X W)) and r < N ((U^T X) W)
def test_matrix_attention_cpu_kernels_equal_plain(qk, v):
  _module_pair_matches(lambda f: MatrixAttention(qk, v, 2, 2, cpu_kernels=f),
                       jax.random.normal(jax.random.PRNGKey(10), (2, 4, 6, 8)))


@pytest.mark.parametrize('fuse_mode', ['concat', 'gated'])  # concat: cpu.ConcatLinear vs Dense on the concat
def test_hybrid_cpu_kernels_equal_plain(fuse_mode):
  _module_pair_matches(lambda f: HybridTemporalAttention(8, 16, 2, 2, fuse_mode=fuse_mode, cpu_kernels=f),
                       jax.random.normal(jax.random.PRNGKey(13), (2, 4, 6, 8)))

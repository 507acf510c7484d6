"""Temporal designs checked against closed forms: Matrix Attention, Local Factorized, kernels, contraction order."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from framedit_jax.models import attention as A
from framedit_jax.models.fusion import local_temporal

B, T, N, D = 2, 4, 16, 32
C, R, RQK, RV = 4, 2, 8, 32  # column heads, row heads, r_qk (< N), r_v (> N)


def _random_params(module, *args, seed=7, scale=0.1):
  """Params with the structure of `module.init(*args)`, filled with N(0, scale^2) on the host (no init compile)."""
  shapes = jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), *args)['params'])
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda s: jnp.asarray(rng.standard_normal(s.shape, np.float32) * scale), shapes)


def _matrix_module(u_type='param'):
  return A.MatrixAttention(RQK, RV, C, R, u_type=u_type)


def _slow_matrix_attention(p, x, u_type='param'):
  """Per-frame loop in float64 written from the equations (supplement §1 Eq. 11; official `models/framedit_g.py`)."""
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), p)
  x = np.asarray(x, np.float64)

  def u_of(lin):
    u = lin['u']
    if u_type == 'softmax':
      z = u / lin['u_temperature']
      z = np.exp(z - z.max(axis=0, keepdims=True))
      u = z / z.sum(axis=0, keepdims=True)
    return u

  def mlin(lin, xt):
    return u_of(lin).T @ xt @ lin['w'] + lin['bias']

  a, bw, av = RQK // C, D // R, RV // C
  out = np.zeros_like(x)
  for b in range(x.shape[0]):
    q = [mlin(p['linear_q'], x[b, t]) for t in range(T)]
    k = [mlin(p['linear_k'], x[b, t]) for t in range(T)]
    v = [mlin(p['linear_v'], x[b, t]) for t in range(T)]
    o = [np.zeros((RV, D)) for _ in range(T)]
    for c in range(C):
      for r in range(R):
        rows, cols, vrows = slice(c * a, (c + 1) * a), slice(r * bw, (r + 1) * bw), slice(c * av, (c + 1) * av)
        for t in range(T):
          s = np.array([np.sum(q[t][rows, cols] * k[s_][rows, cols]) for s_ in range(T)]) / np.sqrt(a * bw)
          w = np.exp(s - s.max())
          w /= w.sum()
          o[t][vrows, cols] = sum(w[s_] * v[s_][vrows, cols] for s_ in range(T))
    for t in range(T):
      out[b, t] = mlin(p['proj_v'], o[t])
  return out


@pytest.mark.parametrize('u_type', ['param', 'softmax'])
def test_matrix_attention_matches_per_frame_loop(u_type):
  m = _matrix_module(u_type)
  x = jax.random.normal(jax.random.PRNGKey(0), (B, T, N, D))
  params = _random_params(m, x, scale=0.3)
  if u_type == 'softmax':
    for lin in params.values():
      lin['u_temperature'] = 1.0 + lin['u_temperature']
  out, state = m.apply({'params': params}, x, mutable=['intermediates'])
  np.testing.assert_allclose(out, _slow_matrix_attention(params, x, u_type), atol=2e-5, rtol=1e-5)
  (attn_map,) = state['intermediates']['attn_map']
  assert attn_map.shape == (B, C * R, T, T)
  np.testing.assert_allclose(attn_map.sum(-1), 1.0, atol=1e-6)


def test_matrix_attention_map_head_order_and_identity_u():
  """Head h = c*R + r reads rows [c*a, (c+1)*a) and columns [r*b, (r+1)*b); identity U (r = N) has no u param."""
  q = jax.random.normal(jax.random.PRNGKey(2), (1, T, RQK, D))
  k = jax.random.normal(jax.random.PRNGKey(3), (1, T, RQK, D))
  w = np.asarray(A.matrix_attention_weights(q, k, C, R))
  a, bw = RQK // C, D // R
  for c, r in [(0, 1), (3, 0), (2, 1)]:
    qs = np.asarray(q)[0, :, c * a:(c + 1) * a, r * bw:(r + 1) * bw].reshape(T, -1)
    ks = np.asarray(k)[0, :, c * a:(c + 1) * a, r * bw:(r + 1) * bw].reshape(T, -1)
    s = qs @ ks.T / np.sqrt(a * bw)
    e = np.exp(s - s.max(-1, keepdims=True))
    np.testing.assert_allclose(w[0, c * R + r], e / e.sum(-1, keepdims=True), atol=1e-5)
  m = A.MatrixAttention(N, N, C, R, u_type='identity')
  x = jax.random.normal(jax.random.PRNGKey(4), (1, T, N, D))
  p = jax.eval_shape(lambda: m.init(jax.random.PRNGKey(5), x)['params'])
  assert 'u' not in p['linear_q'] and set(p['linear_q']) == {'w', 'bias'}
  lin = A.MatrixLinear(N, D, u_type='identity')
  pl = _random_params(lin, x)
  np.testing.assert_allclose(lin.apply({'params': pl}, x), np.asarray(x) @ np.asarray(pl['w']) + pl['bias'],
                             atol=1e-5)


@pytest.mark.parametrize('r', [4, 64])
def test_matrix_linear_orders_agree_and_cheaper_order_is_used(r):
  n, d, k = N, D, D
  x = jax.random.normal(jax.random.PRNGKey(0), (3, n, d))
  u = jax.random.normal(jax.random.PRNGKey(1), (n, r))
  w = jax.random.normal(jax.random.PRNGKey(2), (d, k))
  y = A.matrix_linear(x, u, w)
  ref = np.einsum('nr,bnd,dk->brk', np.asarray(u, np.float64), np.asarray(x, np.float64), np.asarray(w, np.float64))
  np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-3)
  flops = jax.jit(A.matrix_linear).lower(x, u, w).compile().cost_analysis()
  flops = flops[0]['flops'] if isinstance(flops, list) else flops['flops']
  best = 3 * 2 * min(r * n * d + r * d * k, n * d * k + r * n * k)
  assert flops <= best * 1.01, (flops, best)


def test_local_temporal_depends_only_on_same_token_matrix_on_all():
  x = jax.random.normal(jax.random.PRNGKey(0), (1, T, N, D))
  local = A.Attention(num_heads=2)
  lp = _random_params(local, x[:, 0], scale=0.3)
  mat = _matrix_module()
  mp = _random_params(mat, x, scale=0.3)
  n0, t0 = 5, 1

  def grad_of(f):
    # d out[0, t0, n0, :].sum() / dx  -> (T, N) gradient norms per input token.
    g = jax.grad(lambda x: f(x)[0, t0, n0].sum())(x)
    return np.asarray(jnp.sqrt(jnp.sum(g[0]**2, axis=-1)))

  g_local = grad_of(lambda x: local_temporal(lambda h: local.apply({'params': lp}, h), x))
  others = np.delete(g_local, n0, axis=1)
  np.testing.assert_array_equal(others, 0.0)  # no other token, in any frame
  assert np.all(g_local[:, n0] > 1e-6)  # the same token in every frame
  g_mat = grad_of(lambda x: mat.apply({'params': mp}, x))
  assert np.all(g_mat > 1e-6)  # every token of every frame


@pytest.mark.parametrize('kernel', ['xla', 'cudnn'])
def test_einsum_and_dot_product_attention_kernels_agree(kernel):
  q, k, v = (jax.random.normal(jax.random.PRNGKey(i), (3, 7, 2, 16)) for i in range(3))
  ref = A.dot_product_attention(q, k, v, 'einsum')
  s = np.einsum('bqhd,bkhd->bhqk', np.asarray(q, np.float64), np.asarray(k, np.float64)) / 4.0
  e = np.exp(s - s.max(-1, keepdims=True))
  closed = np.einsum('bhqk,bkhd->bqhd', e / e.sum(-1, keepdims=True), np.asarray(v, np.float64))
  np.testing.assert_allclose(ref, closed, atol=1e-5)
  np.testing.assert_allclose(A.dot_product_attention(q, k, v, kernel), ref, atol=1e-5)
  with pytest.raises(ValueError, match='attention_kernel'):
    A.dot_product_attention(q, k, v, 'flash')

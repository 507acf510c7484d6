"""The cotangent barrier (`cpu.grad_barrier`) changes no number and bounds the backward's fusions to one sublayer;
the whole `cpu_kernels` switch (barrier and every kernel) changes no loss and no gradient of a model."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from framedit_jax.models import get_model
from framedit_jax.models.cpu.grad_barrier import materialize_cotangent

TINY = dict(hidden_size=32, num_heads=2, input_size=8, num_frames=4)
MATRIX = dict(qk_col_dim=8, v_col_dim=32, num_col_heads=4)


def test_barrier_is_the_identity_and_its_vjp_passes_finite_cotangents_bit_exactly():
  x = jax.random.normal(jax.random.PRNGKey(0), (3, 5, 7)) * 1e3
  g = jax.random.normal(jax.random.PRNGKey(1), x.shape) * jnp.logspace(-30, 30, 7)  # tiny to huge, all finite
  y, vjp = jax.vjp(materialize_cotangent, x)
  np.testing.assert_array_equal(np.asarray(y), np.asarray(x))
  np.testing.assert_array_equal(np.asarray(vjp(g)[0]), np.asarray(g))
  got = jax.jit(lambda g: vjp(g)[0])(g)  # compiled too (XLA must not rewrite exp(0 * g) into something inexact)
  np.testing.assert_array_equal(np.asarray(got), np.asarray(g))
  bad = vjp(g.at[0, 0, 0].set(jnp.inf))[0]
  assert np.isnan(np.asarray(bad)[0, 0, 0]) and np.isfinite(np.asarray(bad)[1:]).all()  # documented: inf -> NaN


def _grads(name, kw, barrier):
  model = get_model(name, cpu_kernels=barrier, **TINY, **kw)
  key = jax.random.PRNGKey(0)
  x = jax.random.normal(key, (2, 4, 8, 8, 4))
  t = jnp.array([3, 700])
  y = jnp.array([0, 1]) if kw.get('num_classes') else None
  params = model.init({'params': key}, x, t, y)['params']
  leaves, treedef = jax.tree.flatten(params)  # no zero-init: every path carries gradient
  keys = jax.random.split(jax.random.PRNGKey(1), len(leaves))
  params = jax.tree.unflatten(treedef, [p + 0.05 * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys)])
  loss = lambda p: jnp.mean(model.apply({'params': p}, x, t, y) ** 2)
  return jax.jit(jax.value_and_grad(loss))(params)


@pytest.mark.parametrize('name,kw', [
    ('Latte-S/2', dict(depth=4)),
    ('FrameDiTH-S/64-256/2-concat', dict(depth=4, num_classes=3, scan_blocks=True, **MATRIX)),
])
def test_same_loss_and_gradients_with_and_without_the_cpu_kernels(name, kw):
  (l0, g0), (l1, g1) = _grads(name, kw, False), _grads(name, kw, True)
  # The barrier leaves the forward untouched; the kernels (ConcatLinear, the batched U^T) change the float
  # summation order only.
  np.testing.assert_allclose(float(l1), float(l0), rtol=1e-6)
  for a, b in zip(jax.tree.leaves(g0), jax.tree.leaves(g1)):  # only XLA's fusion order may differ
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=2e-5, atol=1e-7)


def _largest_fusion_operands(depth: int, scan: bool, barrier: bool) -> int:
  model = get_model('Latte-S/2', depth=depth, scan_blocks=scan, cpu_kernels=barrier, **TINY)
  x, t = jnp.zeros((2, 4, 8, 8, 4)), jnp.array([1, 500])
  params = jax.eval_shape(model.init, {'params': jax.random.PRNGKey(0)}, x, t)['params']
  loss = lambda p: jnp.sum(model.apply({'params': p}, x, t) ** 2)
  hlo = jax.jit(jax.grad(loss)).lower(params).compile().as_text()
  return max(m.group(1).count('%') for m in re.finditer(r'= \S+ fusion\((.*?)\), kind=', hlo))


def test_barrier_bounds_the_backward_fusions_even_unrolled():
  """Without it the unrolled backward fuses the cross-block cotangent chain into its consumers (the largest
  fusion grows with depth: the superlinear step, benchmarks/README.md); with it every fusion stays within a sublayer."""
  without = [_largest_fusion_operands(d, False, False) for d in (4, 6)]
  with_barrier = [_largest_fusion_operands(d, False, True) for d in (4, 6)]
  assert without[1] > without[0], without
  assert with_barrier[0] == with_barrier[1] < without[0], (with_barrier, without)
  assert _largest_fusion_operands(4, True, True) < _largest_fusion_operands(4, True, False)

"""`scan_blocks` and `remat_policy`: the scanned block stack computes what the unrolled one does, and its backward
stays linear in depth (the compiled step has no fusion whose size grows with depth)."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from framedit_jax.models import get_model
from framedit_jax.models.blocks import REMAT_POLICIES, remat_policy

TINY = dict(hidden_size=32, num_heads=2, input_size=8, num_frames=4)
MATRIX = dict(qk_col_dim=8, v_col_dim=32, num_col_heads=4)

CASES = [
    ('Latte-S/2', dict(depth=4)),
    ('DiT3D-S/2', dict(depth=3)),
    ('FrameDiTG-S/64-256/2', dict(depth=4, **MATRIX)),
    ('FrameDiTH-S/64-256/2-concat', dict(depth=5, num_classes=3, **MATRIX)),  # odd depth: trailing spatial block
    ('FrameDiTHIMG-S/64-256/2-gated', dict(depth=4, use_image_num=2, **MATRIX)),
]


def _inputs(model, key=0):
  t_total = model.num_frames + model.use_image_num
  x = jax.random.normal(jax.random.PRNGKey(key), (2, t_total, 8, 8, 4))
  t = jnp.array([3, 700])
  y = jnp.array([1, 3]) if model.num_classes else None
  return x, t, y


def _perturbed_params(model, x, t, y):
  params = model.init({'params': jax.random.PRNGKey(1)}, x, t, y)['params']
  # Move the zero-initialised adaLN / final layers away from zero so every block contributes.
  leaves, treedef = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.PRNGKey(2), len(leaves))
  return jax.tree.unflatten(treedef, [a + 0.05 * jax.random.normal(k, a.shape) for a, k in zip(leaves, keys)])


@pytest.mark.parametrize('name,kw', CASES, ids=[c[0] for c in CASES])
def test_scan_equals_unrolled_forward_and_gradient(name, kw):
  unrolled = get_model(name, **TINY, **kw)
  scanned = get_model(name, scan_blocks=True, **TINY, **kw)
  x, t, y = _inputs(unrolled)
  params = _perturbed_params(unrolled, x, t, y)
  # Same parameter tree from init either way (init always runs unrolled).
  assert jax.tree.structure(scanned.init({'params': jax.random.PRNGKey(1)}, x, t, y)['params']) == \
      jax.tree.structure(params)

  def loss(model):
    return lambda p: jnp.sum(model.apply({'params': p}, x, t, y)**2)

  out_u = unrolled.apply({'params': params}, x, t, y)
  out_s = scanned.apply({'params': params}, x, t, y)
  assert float(jnp.max(jnp.abs(out_u))) > 0.1
  np.testing.assert_allclose(out_s, out_u, atol=2e-6, rtol=0)
  g_u = jax.grad(loss(unrolled))(params)
  g_s = jax.grad(loss(scanned))(params)
  scale = max(float(jnp.max(jnp.abs(g))) for g in jax.tree.leaves(g_u))
  for a, b in zip(jax.tree.leaves(g_u), jax.tree.leaves(g_s)):
    np.testing.assert_allclose(b, a, atol=2e-5 * scale, rtol=0)


@pytest.mark.parametrize('policy', ['full', 'dots_saveable', 'dots_with_no_batch_dims_saveable'])
@pytest.mark.parametrize('scan', [False, True])
def test_remat_policy_same_gradient_and_checkpointed(policy, scan):
  kw = dict(depth=2, **TINY)
  base = get_model('FrameDiTH-S/64-256/2-concat', **kw, **MATRIX)
  remat = get_model('FrameDiTH-S/64-256/2-concat', remat_policy=policy, scan_blocks=scan, **kw, **MATRIX)
  x, t, y = _inputs(base)
  params = _perturbed_params(base, x, t, y)
  loss = lambda m: (lambda p: jnp.sum(m.apply({'params': p}, x, t)**2))
  g_b, g_r = jax.grad(loss(base))(params), jax.grad(loss(remat))(params)
  for a, b in zip(jax.tree.leaves(g_b), jax.tree.leaves(g_r)):
    np.testing.assert_allclose(b, a, atol=1e-4, rtol=1e-5)
  jaxpr = str(jax.make_jaxpr(loss(remat))(params))
  assert 'checkpoint' in jaxpr or 'remat' in jaxpr
  assert ('scan' in jaxpr) == scan


def test_remat_policy_names():
  assert remat_policy('none') is None
  assert remat_policy('none', remat=True) is jax.checkpoint_policies.nothing_saveable
  assert remat_policy('dots_saveable') is jax.checkpoint_policies.dots_saveable
  assert set(REMAT_POLICIES) >= {'none', 'full', 'dots_saveable'}
  with pytest.raises(ValueError, match='remat_policy must be one of'):
    remat_policy('everything')


def _largest_fusion_operands(depth: int, scan: bool) -> int:
  model = get_model('Latte-S/2', depth=depth, scan_blocks=scan, cpu_kernels=False, **TINY)
  x, t, _ = _inputs(model)
  params = jax.eval_shape(model.init, {'params': jax.random.PRNGKey(0)}, x, t)['params']
  loss = lambda p: jnp.sum(model.apply({'params': p}, x, t)**2)
  hlo = jax.jit(jax.grad(loss)).lower(params).compile().as_text()
  counts = [m.group(1).count('%') for m in re.finditer(r'= \S+ fusion\((.*?)\), kind=', hlo)]
  return max(counts)


def test_scanned_backward_has_no_fusion_growing_with_depth():
  """The unrolled backward on XLA CPU fuses the residual-stream cotangent chain of every block into its consumers
  (benchmarks/README.md: the 230-operand fusions that make the step superlinear in depth); the scan body bounds it."""
  scanned = [_largest_fusion_operands(d, True) for d in (4, 6)]
  assert scanned[0] == scanned[1], scanned
  # That the unrolled, barrier-free backward still grows is checked in test_models_grad_barrier.py.

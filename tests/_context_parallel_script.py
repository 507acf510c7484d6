"""Subprocess body of tests/test_parallel_context.py (needs 8 host CPU devices).

  XLA_FLAGS=--xla_force_host_platform_device_count=8 python tests/_context_parallel_script.py OUT.json

Writes max abs differences (values and gradients) between context-parallel attention (ring / Ulysses) and the
single-device computation, plus the reference magnitudes, for
  * the kernels alone (`ring_attention`, `ulysses_attention` vs `dot_product_attention`, 8 shards, dv != d for ring);
  * whole frame-parallel models (Full 3D = DiT3D, Matrix Attention = FrameDiT-G, FrameDiT-H whose local temporal
    branch is the all-to-all and matrix branch the ring/Ulysses, and Latte's temporal blocks), params gradients
    included, on a (data=2, frame=4) mesh.
"""

import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, Mesh, PartitionSpec as P

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from framedit_jax.models import get_model  # pylint: disable=wrong-import-position
from framedit_jax.models.attention import dot_product_attention  # pylint: disable=wrong-import-position
from framedit_jax.parallel import context_parallel as cp  # pylint: disable=wrong-import-position
from framedit_jax.parallel import frame_parallel as fp  # pylint: disable=wrong-import-position
from framedit_jax.parallel import mesh as mesh_lib  # pylint: disable=wrong-import-position

jax.config.update('jax_default_matmul_precision', 'highest')

TINY = dict(hidden_size=64, depth=2, num_heads=4, input_size=8, num_frames=8, num_classes=3)
MATRIX = dict(num_col_heads=4, qk_col_dim=8, v_col_dim=16)
MODELS = {
    'dit3d': ('DiT3D-S/2', {}),
    'framedit_g': ('FrameDiTG-S/64-256/2', MATRIX),
    'framedit_h': ('FrameDiTH-S/64-256/2-concat', MATRIX),
    'latte': ('Latte-S/2', {}),
}
# Latte's temporal blocks are the all-to-all whatever the mode (each shard keeps N/f tokens of every frame).
MODES = {'dit3d': ('ring', 'ulysses'), 'framedit_g': ('ring',), 'framedit_h': ('ulysses',), 'latte': ('ring',)}


def maxdiff(a, b) -> float:
  return float(max(jax.tree.leaves(jax.tree.map(lambda u, v: jnp.max(jnp.abs(u - v)), a, b))))


def maxabs(a) -> float:
  return float(max(jax.tree.leaves(jax.tree.map(lambda u: jnp.max(jnp.abs(u)), a))))


def kernel_cases(out):
  mesh = Mesh(np.asarray(jax.devices()), ('frame',), axis_types=(AxisType.Auto,))
  keys = jax.random.split(jax.random.PRNGKey(0), 4)
  b, l, h, d = 2, 32, 8, 16
  for mode, dv in (('ring', 24), ('ulysses', 16)):
    q = jax.random.normal(keys[0], (b, l, h, d)) * 2.0  # peaked softmax: exercises the running max
    k = jax.random.normal(keys[1], (b, l, h, d))
    v = jax.random.normal(keys[2], (b, l, h, dv))
    g = jax.random.normal(keys[3], (b, l, h, dv))
    spec = P(None, 'frame')
    sharded = jax.shard_map(lambda q_, k_, v_: cp.sharded_attention(q_, k_, v_, 'frame', mode), mesh=mesh,
                            in_specs=(spec,) * 3, out_specs=spec)
    loss = lambda fn: (lambda *a: jnp.sum(fn(*a) * g))
    ref_fn = lambda q_, k_, v_: dot_product_attention(q_, k_, v_)
    ref = ref_fn(q, k, v)
    ref_g = jax.grad(loss(ref_fn), argnums=(0, 1, 2))(q, k, v)
    got = jax.jit(sharded)(q, k, v)
    got_g = jax.jit(jax.grad(loss(sharded), argnums=(0, 1, 2)))(q, k, v)
    out[f'kernel_{mode}'] = dict(value=maxdiff(got, ref), grad=maxdiff(got_g, ref_g), ref=maxabs(ref),
                                 ref_grad=maxabs(ref_g))


def model_cases(out):
  mesh = Mesh(np.asarray(jax.devices()).reshape(2, 1, 4), mesh_lib.AXES, axis_types=(AxisType.Auto,) * 3)
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 8, 8, 8, 4))
  t = jnp.array([3, 700])
  y = jnp.array([0, 2])
  g = jax.random.normal(jax.random.PRNGKey(2), (2, 8, 8, 8, 8))
  for key, (name, extra) in MODELS.items():
    base = get_model(name, **TINY, **extra)
    params = base.init(jax.random.PRNGKey(3), x, t, y=y)['params']
    # Non-zero adaLN / final layer so every block and both fusion branches matter.
    params = jax.tree.map(lambda p: p + 0.05 * jax.random.normal(jax.random.PRNGKey(p.size), p.shape), params)
    ref_loss = lambda p: jnp.sum(base.apply({'params': p}, x, t, y=y) * g)
    ref = base.apply({'params': params}, x, t, y=y)
    ref_g = jax.grad(ref_loss)(params)
    for mode in MODES[key]:
      model = get_model(name, **TINY, **extra, frame_axis='frame', context_parallel=mode)
      fwd = lambda p, m=model: fp.apply_frame_parallel(m, p, x, t, y, mesh=mesh)
      got = jax.jit(fwd)(params)
      got_g = jax.jit(jax.grad(lambda p, f=fwd: jnp.sum(f(p) * g)))(params)
      out[f'{key}_{mode}'] = dict(value=maxdiff(got, ref), grad=maxdiff(got_g, ref_g), ref=maxabs(ref),
                                  ref_grad=maxabs(ref_g))


def hlo_cases(out):
  """Which collectives each mode lowers to (ring: collective-permute; ulysses: all-to-all; gather: all-gather)."""
  mesh = Mesh(np.asarray(jax.devices()).reshape(2, 1, 4), mesh_lib.AXES, axis_types=(AxisType.Auto,) * 3)
  x = jnp.zeros((2, 8, 8, 8, 4))
  t = jnp.zeros((2,), jnp.int32)
  y = jnp.zeros((2,), jnp.int32)
  for mode in ('ring', 'ulysses', 'gather'):
    model = get_model('DiT3D-S/2', **TINY, frame_axis='frame', context_parallel=mode)
    params = jax.eval_shape(lambda: get_model('DiT3D-S/2', **TINY).init(jax.random.PRNGKey(0), x, t, y=y))['params']
    hlo = jax.jit(lambda p, m=model: fp.apply_frame_parallel(m, p, x, t, y, mesh=mesh)).lower(params).as_text()
    out[f'hlo_{mode}'] = {op: hlo.count(op) for op in ('collective_permute', 'all_to_all', 'all_gather')}


def main():
  out = {}
  kernel_cases(out)
  model_cases(out)
  hlo_cases(out)
  with open(sys.argv[1], 'w') as f:
    json.dump(out, f, indent=1)


if __name__ == '__main__':
  main()

"""Subprocess body of tests/test_activation_sharding.py (needs 4 host CPU devices).

  XLA_FLAGS=--xla_force_host_platform_device_count=4 python tests/_activation_sharding_script.py OUT.json

Compiles the loss gradient of a small FrameDiT-H (scanned blocks, dots remat: the accelerator defaults) under an
fsdp=4 mesh, with the parameters sharded by the trainer's own rule
(`parallel.mesh.state_shardings`) and the batch over `('data', 'fsdp')`, at two batch sizes. Writes the collectives
of each optimized HLO (benchmarks/aot_hlo.py), the parameter bytes, and the largest difference between the sharded
and the single-device gradients.
"""

import json
import os
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import NamedSharding

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'benchmarks'))

import aot_hlo  # pylint: disable=wrong-import-position
from framedit_jax.models import get_model  # pylint: disable=wrong-import-position
from framedit_jax.parallel import mesh as mesh_lib  # pylint: disable=wrong-import-position

jax.config.update('jax_default_matmul_precision', 'highest')

FRAMES, SIZE, CH = 4, 8, 4


def class_model():
  model = get_model('FrameDiTH-S/64-256/2-concat', hidden_size=128, depth=2, num_heads=4, input_size=SIZE,
                    num_frames=FRAMES, num_classes=3, num_col_heads=4, qk_col_dim=8, v_col_dim=16, in_channels=CH,
                    learn_sigma=False, scan_blocks=True, remat_policy='dots_with_no_batch_dims_saveable')

  def inputs(b, rng):
    return (jnp.asarray(rng.normal(size=(b, FRAMES, SIZE, SIZE, CH)), jnp.float32),
            jnp.asarray(rng.integers(0, 1000, b), jnp.int32), jnp.asarray(rng.integers(0, 3, b), jnp.int32))

  return model, inputs


def case(build, batches=(8, 16)):
  model, inputs = build()
  rng = np.random.default_rng(0)
  params = model.init(jax.random.PRNGKey(0), *inputs(2, rng))['params']
  # adaLN-Zero and the zero final layer give zero gradients everywhere: perturb every parameter
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.PRNGKey(1), len(leaves))
  params = tree.unflatten([x + 0.05 * jax.random.normal(k, x.shape, x.dtype) for x, k in zip(leaves, keys)])
  loss = lambda p, *a: jnp.mean(model.apply({'params': p}, *a) ** 2)
  grad = jax.grad(loss)
  mesh = mesh_lib.make_mesh(ml_collections.ConfigDict(dict(data=1, fsdp=4, frame=1)))
  p_sh = mesh_lib.state_shardings(mesh, params)
  out = {'param_bytes': int(sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(params)))}
  for b in batches:
    args = inputs(b, rng)
    a_sh = tuple(mesh_lib.batch_sharding(mesh, a.ndim) for a in args)
    with jax.set_mesh(mesh):
      fn = jax.jit(grad, in_shardings=(p_sh,) + a_sh, out_shardings=p_sh)
      compiled = fn.lower(params, *args).compile()
      g = fn(jax.device_put(params, p_sh), *(jax.device_put(a, s) for a, s in zip(args, a_sh)))
    stats = aot_hlo.collective_stats(compiled.as_text())
    out[str(b)] = {'collectives': {k: v for k, v in stats.items() if isinstance(v, dict)}}
    if b == batches[0]:  # the values: single device, no mesh (constrain_batch is the identity there)
      ref = jax.jit(grad)(params, *args)
      out[str(b)].update(
          grad_diff=float(max(jax.tree.leaves(jax.tree.map(lambda u, v: jnp.max(jnp.abs(u - v)), g, ref)))),
          grad_ref=float(max(jax.tree.leaves(jax.tree.map(lambda u: jnp.max(jnp.abs(u)), ref)))),
          grad_sharded=all(isinstance(x.sharding, NamedSharding) for x in jax.tree.leaves(g)))
  return out


def main(path):
  res = {'framedit_h': case(class_model)}
  with open(path, 'w') as f:
    json.dump(res, f)


if __name__ == '__main__':
  main(sys.argv[1])

"""Activation sharding: the batch axis of every block activation pinned to the mesh's batch axes.

Under a data x fsdp mesh the train step is one `jax.jit` whose shardings come from its arguments: the batch over
`('data', 'fsdp')`, every large parameter over `fsdp` on its largest divisible dimension (`parallel.mesh`). XLA's
sharding propagation is then free to choose, for each matmul `x @ W`, between gathering the weight (FSDP, what
is meant) and resharding the activation onto the weight's layout. The AOT compile of FrameDiT-H-XL/2 on a v5p-8
slice showed it choosing the second inside the block scan: all-gathers whose bytes grew with the batch, plus
hundreds of all-to-alls and collective-permutes per step (docs/scaling.md, table (b)).

`constrain_batch` pins an activation `(B, ...)` to `P(('data', 'fsdp'), None, ...)`: batch sharded, every other
dimension whole, so that only weights move. MaxText does the same with its logical activation constraints. It is
the identity when no mesh is set (`jax.set_mesh`), when the batch axes have size 1, inside a `jax.shard_map` that
binds them (frame parallelism: the model then sees its own shard), and when the leading dimension does not divide
evenly (a micro-batch smaller than the mesh): the numbers never change, only the layout XLA must keep.
"""

from __future__ import annotations

import math

import jax
from jax.sharding import PartitionSpec as P

from framedit_jax.parallel.mesh import BATCH_AXES


def batch_axes_here(leading: int) -> tuple[str, ...]:
  """The batch mesh axes (size > 1, not manual) a leading dimension of size `leading` can be split over."""
  mesh = jax.sharding.get_abstract_mesh()
  if mesh.empty:
    return ()
  names = mesh.axis_names
  if any(a in getattr(mesh, 'manual_axes', ()) for a in names):  # inside shard_map: each shard is already local
    return ()
  axes = tuple(a for a in BATCH_AXES if a in names and mesh.shape[a] > 1)
  if not axes or leading % math.prod(mesh.shape[a] for a in axes):
    return ()
  return axes


def constrain_batch(x: jax.Array) -> jax.Array:
  """`x` `(B, ...)` with B sharded over the current mesh's `('data', 'fsdp')` and the other dims replicated.

  The value is unchanged; see the module docstring for when it is the identity.
  """
  axes = batch_axes_here(x.shape[0]) if x.ndim else ()
  if not axes:
    return x
  return jax.lax.with_sharding_constraint(x, P(axes, *([None] * (x.ndim - 1))))

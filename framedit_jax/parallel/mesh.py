"""Device mesh and shardings for training and sampling.

The mesh has three named axes (docs/scaling.md):

* ``data``  — batch (data parallelism),
* ``fsdp``  — batch *and* parameter sharding (ZeRO-3 style),
* ``frame`` — the frame axis T of the video (frame/sequence parallelism).

The batch dimension of every input is sharded over ``('data', 'fsdp')``. Parameters, optimizer state and
EMA are sharded over ``fsdp`` on their largest divisible dimension (big_vision's ``fsdp`` rule); everything
else is replicated.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np
from absl import logging
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

AXES = ('data', 'fsdp', 'frame')
BATCH_AXES = ('data', 'fsdp')


def mesh_shape(mesh_config, num_devices: int) -> tuple[int, int, int]:
  """Resolves ``mesh.{data,fsdp,frame}`` (``-1`` = all remaining devices) into a concrete shape.

  Raises:
    ValueError: if more than one axis is -1 or the product does not equal ``num_devices``.
  """
  sizes = [int(mesh_config.data), int(mesh_config.fsdp), int(mesh_config.frame)]
  if sizes.count(-1) > 1:
    raise ValueError(f'config.mesh: at most one of data/fsdp/frame may be -1, got {sizes}.')
  known = math.prod(s for s in sizes if s != -1)
  if -1 in sizes:
    if num_devices % known:
      raise ValueError(f'config.mesh: {num_devices} devices are not divisible by the fixed axes {sizes}; '
                       'choose sizes whose product divides the device count.')
    sizes[sizes.index(-1)] = num_devices // known
  if math.prod(sizes) != num_devices:
    raise ValueError(f'config.mesh: data*fsdp*frame = {math.prod(sizes)} but {num_devices} devices are '
                     'available; set one axis to -1 or fix the sizes.')
  return tuple(sizes)


def make_mesh(mesh_config, devices=None) -> Mesh:
  """Builds the ``('data', 'fsdp', 'frame')`` mesh with explicitly ``Auto`` axis types.

  Args:
    mesh_config: ``config.mesh`` with integer fields ``data``, ``fsdp``, ``frame``.
    devices: optional device list (default ``jax.devices()``).
  """
  devices = list(jax.devices() if devices is None else devices)
  shape = mesh_shape(mesh_config, len(devices))
  dev = np.asarray(devices).reshape(shape)
  return Mesh(dev, AXES, axis_types=(AxisType.Auto,) * len(AXES))


def batch_sharding(mesh: Mesh, ndim: int) -> NamedSharding:
  """Sharding for a host batch array of rank ``ndim``: leading axis over ``('data', 'fsdp')``."""
  return NamedSharding(mesh, P(BATCH_AXES, *([None] * (ndim - 1))))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def fsdp_spec(shape: tuple[int, ...], fsdp_size: int, min_size: int = 2**14) -> P:
  """Shards the largest dimension divisible by ``fsdp_size`` over ``fsdp`` (small arrays replicated)."""
  if fsdp_size <= 1 or math.prod(shape) < min_size:
    return P()
  for axis in np.argsort(shape)[::-1]:
    if shape[axis] % fsdp_size == 0:
      spec = [None] * len(shape)
      spec[axis] = 'fsdp'
      return P(*spec)
  return P()


def fsdp_replicated(abstract_state: Any, fsdp_size: int, min_size: int = 2**14) -> tuple[float, str | None]:
  """What the fsdp rule cannot shard: ``(fraction of the state's bytes replicated although large, an example)``.

  An array of at least ``min_size`` elements stays whole on every device when none of its dimensions is
  divisible by ``fsdp_size`` (e.g. a ``(1152, 3456)`` XL attention kernel under fsdp=256). The example is
  ``'path (shape)'`` of the largest such array, or None.
  """
  if fsdp_size <= 1:
    return 0.0, None
  total, stuck, example = 0, 0, (0, None)
  for path, x in jax.tree_util.tree_leaves_with_path(abstract_state):
    shape = tuple(getattr(x, 'shape', ()))
    nbytes = math.prod(shape) * np.dtype(getattr(x, 'dtype', np.float32)).itemsize
    total += nbytes
    if math.prod(shape) >= min_size and fsdp_spec(shape, fsdp_size, min_size) == P():
      stuck += nbytes
      if nbytes > example[0]:
        example = (nbytes, f'{jax.tree_util.keystr(path)} {shape}')
  return (stuck / total if total else 0.0), example[1]


def state_shardings(mesh: Mesh, abstract_state: Any) -> Any:
  """NamedShardings for a (abstract) state pytree: fsdp rule on arrays of rank >= 1, replicate scalars.

  Logs a warning when more than 5% of the state's bytes cannot be sharded over ``fsdp`` (``fsdp_replicated``).
  """
  fsdp = mesh.shape['fsdp']
  frac, example = fsdp_replicated(abstract_state, fsdp)
  if frac > 0.05:
    logging.warning('config.mesh.fsdp=%d: %.0f%% of the train state stays replicated on every device (no dimension '
                    'divisible by %d, e.g. %s); choose an fsdp size that divides the model widths and put the '
                    'rest of the devices on mesh.data (e.g. data=16, fsdp=16 for 256 devices).', fsdp,
                    100 * frac, fsdp, example)

  def one(x):
    shape = tuple(getattr(x, 'shape', ()))
    return NamedSharding(mesh, fsdp_spec(shape, fsdp) if shape else P())

  return jax.tree.map(one, abstract_state)


HOST_MEMORY = 'pinned_host'


def supports_host_offload(mesh: Mesh) -> bool:
  """Whether the mesh's devices have a ``pinned_host`` memory space (TPU, GPU and the CPU backend do)."""
  try:
    return HOST_MEMORY in {m.kind for m in mesh.devices.flat[0].addressable_memories()}
  except Exception:  # pylint: disable=broad-except
    return False


def with_memory_kind(shardings: Any, kind: str) -> Any:
  """``shardings`` (a pytree of ``NamedSharding``) placed in memory space ``kind`` ('device' or 'pinned_host')."""
  return jax.tree.map(lambda s: s.with_memory_kind(kind), shardings)


def _on_host(x) -> bool:
  if isinstance(x, jax.core.Tracer):
    return jax.typeof(x).memory_space == jax.memory.Space.Host
  return getattr(getattr(x, 'sharding', None), 'memory_kind', None) == HOST_MEMORY


def to_device_memory(tree: Any, after: Any = None) -> Any:
  """``tree`` with its host-memory arrays (``config.train.host_offload``) copied to device memory.

  Works on concrete arrays and, inside ``jax.jit``, on traced ones (their aval's memory space). Inside a step,
  ``after`` (e.g. the gradients) orders the copies after that value is computed, through an optimization barrier,
  so the offloaded optimizer state does not come back to the device while the backward pass's activations are
  still alive. Arrays already in device memory pass through untouched.
  """
  leaves = jax.tree.leaves(tree)
  if not any(_on_host(x) for x in leaves):
    return tree
  if after is not None:
    tree, _ = jax.lax.optimization_barrier((tree, after))

  def one(x):
    if not _on_host(x):
      return x
    if isinstance(x, jax.core.Tracer):
      return jax.device_put(x, jax.memory.Space.Device)
    return jax.device_put(x, x.sharding.with_memory_kind('device'))

  return jax.tree.map(one, tree)


def host_to_global(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
  """Assembles process-local batch slices into global arrays sharded on the batch axes.

  Each process passes its own slice ``(B_local, ...)``; the global batch is ``B_local * process_count``.
  """
  out = {}
  for k, v in batch.items():
    v = np.asarray(v)
    sharding = batch_sharding(mesh, v.ndim)
    out[k] = jax.make_array_from_process_local_data(sharding, v)
  return out

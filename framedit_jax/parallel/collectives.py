"""Frame-axis collectives used by the models when they run inside a `jax.shard_map` over `frame`.

Every helper takes the mesh axis name (`frame_axis`) and is the identity when that axis is None, not bound by an
enclosing `jax.shard_map` (the model then runs unsharded: `init`, sampling, single device) or of size 1. So a model
built with `frame_axis='frame'` computes the same numbers everywhere; only inside `apply_frame_parallel` does it see
its local slice of T and communicate. This module imports nothing from `framedit_jax.models` (the models import it).

Layouts (docs/scaling.md): frame-sharded `(B, T/f, N, D)` -> gathered `(B, T, ...)` (all-gather, for K/V) or
token-sharded `(B, T, N/f, D)` (all-to-all, for Local Factorized attention over T).
"""

from __future__ import annotations

import jax


def frame_axis_size(frame_axis: str | None) -> int:
  """Number of shards of `frame_axis` if it is a manual axis of the enclosing `jax.shard_map`, else 1."""
  if frame_axis is None:
    return 1
  mesh = jax.sharding.get_abstract_mesh()
  if frame_axis not in getattr(mesh, 'manual_axes', ()):
    return 1
  return int(mesh.shape[frame_axis])


def frame_offset(frame_axis: str | None, local_frames: int) -> jax.Array | int:
  """Global index of this shard's first frame: `axis_index(frame_axis) * local_frames` (0 when unsharded)."""
  if frame_axis_size(frame_axis) == 1:
    return 0
  return jax.lax.axis_index(frame_axis) * local_frames


def gather_frames(x: jax.Array, frame_axis: str | None, axis: int = 1) -> jax.Array:
  """All-gathers the frame-sharded dimension `axis` in shard order: `(.., L/f, ..)` -> `(.., L, ..)`.

  Used for the keys and values of Matrix Attention (`(B, T/f, r, D)`) and Full 3D attention (`(B, T/f*N, H, d)`,
  tokens ordered frame-major, so shard order is token order). Moves `(f-1)/f` of the gathered array into each device.
  """
  if frame_axis_size(frame_axis) == 1:
    return x
  return jax.lax.all_gather(x, frame_axis, axis=axis, tiled=True)


def frames_to_tokens(x: jax.Array, frame_axis: str | None) -> jax.Array:
  """All-to-all `(B, T/f, N, ...)` (frame-sharded) -> `(B, T, N/f, ...)` (token-sharded, all frames local).

  Raises:
    ValueError: N (tokens per frame) not divisible by the frame-axis size.
  """
  f = frame_axis_size(frame_axis)
  if f == 1:
    return x
  if x.shape[2] % f:
    raise ValueError(f'Frame parallelism with Local Factorized attention needs tokens per frame N={x.shape[2]} '
                     f'divisible by mesh.frame={f}; change config.mesh.frame or the latent/patch size.')
  return jax.lax.all_to_all(x, frame_axis, split_axis=2, concat_axis=1, tiled=True)


def tokens_to_frames(x: jax.Array, frame_axis: str | None) -> jax.Array:
  """Inverse of `frames_to_tokens`: `(B, T, N/f, ...)` -> `(B, T/f, N, ...)`."""
  if frame_axis_size(frame_axis) == 1:
    return x
  return jax.lax.all_to_all(x, frame_axis, split_axis=1, concat_axis=2, tiled=True)

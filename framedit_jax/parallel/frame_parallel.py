"""Frame (sequence) parallelism: the video's T axis sharded over the mesh axis `frame` with `jax.shard_map`.

See docs/scaling.md. Inside `apply_frame_parallel` every device holds `(B/(data*fsdp), T/f, H, W, C)` and the full
(replicated) parameters; the model, built with `frame_axis='frame'`, then runs
  * patch embedding, spatial blocks, MLPs, adaLN and the final layer per frame: no communication;
  * the temporal position embedding as this shard's slice (offset `axis_index('frame') * T/f`);
  * Matrix Attention (FrameDiT-G): per-frame Q/K/V MatrixLinears, K and V all-gathered over `frame` (only the
    T x T scores are global), output projection local;
  * Local Factorized attention (Latte, FrameDiT-H's local branch): all-to-all `(B, T/f, N, D)` -> `(B, T, N/f, D)`,
    attention over T per token, all-to-all back;
  * Full 3D attention (DiT3D): queries local, K and V of all T*N tokens all-gathered;
  * FrameDiT-H: both branches as above, LayerNorms and fusion local.

Bytes received per device per temporal block (forward, element size s, per-device batch b, f frame shards):
  Matrix:     2 all-gathers of K (b, T, r_qk, D) and V (b, T, r_v, D):  (f-1)/f * b*T*(r_qk + r_v)*D*s
  Local:      2 all-to-alls of (b, T/f, N, D):                          2 * (f-1)/f * b*T*N*D*s / f
  Full 3D:    2 all-gathers of K, V (b, T*N, D):                        2 * (f-1)/f * b*T*N*D*s
  FrameDiT-H: Matrix + Local.
The backward pass moves the same amounts again (reduce-scatter of dK/dV, all-to-all of the cotangents).

The pure `*_sharded` functions below are the collective counterparts of `framedit_jax.models.attention`'s
functions; call them inside a `jax.shard_map` that shards their T axis over `frame_axis`.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from framedit_jax.models.attention import dot_product_attention, matrix_attention
from framedit_jax.parallel.collectives import frames_to_tokens, gather_frames, tokens_to_frames

FRAME_AXIS = 'frame'
BATCH_AXES = ('data', 'fsdp')


def matrix_attention_sharded(q: jax.Array, k: jax.Array, v: jax.Array, num_col_heads: int, num_row_heads: int,
                             frame_axis: str = FRAME_AXIS) -> tuple[jax.Array, jax.Array]:
  """Matrix Attention with frame-sharded inputs (K/V all-gather).

  Args:
    q, k: `(B, T/f, r_qk, D)`; v: `(B, T/f, r_v, D)` -- this shard's frames.
    num_col_heads, num_row_heads: C and R of `framedit_jax.models.attention.matrix_attention`.
    frame_axis: the shard_map axis over which T is sharded.

  Returns:
    `(out (B, T/f, r_v, D), weights (B, C*R, T/f, T))`, equal to this shard's rows of the unsharded result.
  """
  k, v = gather_frames(k, frame_axis), gather_frames(v, frame_axis)
  return matrix_attention(q, k, v, num_col_heads, num_row_heads)


def local_attention_sharded(q: jax.Array, k: jax.Array, v: jax.Array, frame_axis: str = FRAME_AXIS,
                            kernel: str = 'einsum') -> jax.Array:
  """Local Factorized attention (over T, per token) with frame-sharded inputs, via two all-to-alls.

  Args:
    q, k, v: `(B, T/f, N, H, d)`; N must be divisible by f.

  Returns:
    `(B, T/f, N, H, d)`: this shard's frames of attention over all T frames for each token.
  """
  q, k, v = (frames_to_tokens(a, frame_axis) for a in (q, k, v))  # (B, T, N/f, H, d)
  b, t, n, h, dh = q.shape
  fold = lambda a: jnp.swapaxes(a, 1, 2).reshape(b * n, t, h, dh)
  out = dot_product_attention(fold(q), fold(k), fold(v), kernel)
  return tokens_to_frames(jnp.swapaxes(out.reshape(b, n, t, h, dh), 1, 2), frame_axis)


def full3d_attention_sharded(q: jax.Array, k: jax.Array, v: jax.Array, frame_axis: str = FRAME_AXIS,
                             kernel: str = 'einsum') -> jax.Array:
  """Full 3D attention (over all T*N tokens) with frame-sharded inputs (K/V all-gather).

  Args:
    q, k, v: `(B, T/f, N, H, d)`.

  Returns:
    `(B, T/f, N, H, d)`.
  """
  b, t, n, h, dh = q.shape
  tokens = lambda a: a.reshape(b, t * n, h, dh)  # frame-major: shard order = token order
  k, v = gather_frames(tokens(k), frame_axis), gather_frames(tokens(v), frame_axis)
  return dot_product_attention(tokens(q), k, v, kernel).reshape(b, t, n, h, dh)


def communication_bytes(temporal: str, *, batch: int, frames: int, tokens: int, hidden: int, shards: int,
                        qk_col_dim: int = 0, v_col_dim: int = 0, itemsize: int = 4) -> float:
  """Bytes one device receives per temporal block in a frame-parallel forward pass (module docstring formulas).

  Args:
    temporal: 'matrix', 'local', 'full3d' or 'hybrid'.
    batch: per-device batch b; frames: global T; tokens: N per frame; hidden: D; shards: f = mesh.frame;
    qk_col_dim, v_col_dim: r_qk, r_v (matrix / hybrid); itemsize: bytes per element (4 float32, 2 bfloat16).

  Returns:
    Bytes (the backward pass moves as much again). 0 when shards == 1.
  """
  share = (shards - 1) / shards
  matrix = share * batch * frames * (qk_col_dim + v_col_dim) * hidden * itemsize
  local = 2 * share * batch * frames * tokens * hidden * itemsize / shards
  full3d = 2 * share * batch * frames * tokens * hidden * itemsize
  table = {'matrix': matrix, 'local': local, 'full3d': full3d, 'hybrid': matrix + local}
  if temporal not in table:
    raise ValueError(f'temporal must be one of {sorted(table)}, got {temporal!r}.')
  return table[temporal]


def _batch_spec(mesh: Any, batch: int, batch_axes: tuple[str, ...]) -> Any:
  axes = tuple(a for a in batch_axes if a in mesh.axis_names)
  if not axes or batch % math.prod(mesh.shape[a] for a in axes):
    return None  # e.g. sampling a single video: replicate over the batch axes
  return axes


def apply_frame_parallel(model: Any, params: Any, x: jax.Array, t: jax.Array, y: jax.Array | None = None, *,
                         mesh: Any = None, frame_axis: str = FRAME_AXIS,
                         batch_axes: tuple[str, ...] = BATCH_AXES) -> jax.Array:
  """`model.apply({'params': params}, x, t, y=y)` with T sharded over `frame_axis` by `jax.shard_map`.

  Args:
    model: a `LatteStyleDiT` (its `frame_axis` is set to `frame_axis` here; the parameters are the same).
    params: its parameters (any sharding; inside they are replicated, so fsdp shards are all-gathered first).
    x: `(B, T, H, W, C)`; t: `(B,)`; y: `(B,)` labels or None.
    mesh: a `Mesh` with `frame_axis` (and optionally `batch_axes`); None = the mesh set by `jax.set_mesh`.
    batch_axes: mesh axes sharding B (used only if B is divisible by their product, else B is replicated).

  Returns:
    float32 `(B, T, H, W, C_out)` sharded like x, equal (up to float rounding) to the unsharded forward.

  Raises:
    ValueError: no mesh, T not divisible by the frame-axis size, or (local / hybrid designs) tokens per frame not
      divisible by it; use_image_num > 0.
  """
  mesh = jax.sharding.get_abstract_mesh() if mesh is None else mesh
  if frame_axis not in mesh.axis_names:
    raise ValueError(f'apply_frame_parallel: mesh axes {mesh.axis_names} lack {frame_axis!r}; pass mesh= or call '
                     'it under jax.set_mesh(mesh).')
  f = mesh.shape[frame_axis]
  if x.shape[1] % f:
    raise ValueError(f'Frame parallelism: T={x.shape[1]} frames must be divisible by mesh.{frame_axis}={f}; '
                     'change config.data.num_frames or config.mesh.frame.')
  n = (x.shape[2] // model.patch_size) * (x.shape[3] // model.patch_size)
  if model.temporal in ('local', 'hybrid') and n % f:
    raise ValueError(f'Frame parallelism with {model.temporal!r} temporal attention needs tokens per frame N={n} '
                     f'divisible by mesh.{frame_axis}={f} (all-to-all); change config.mesh.frame.')
  if model.frame_axis != frame_axis:
    model = model.clone(frame_axis=frame_axis)
  bs = _batch_spec(mesh, x.shape[0], batch_axes)
  video, per_example = P(bs, frame_axis), P(bs)

  if y is None:
    fn = lambda p, xx, tt: model.apply({'params': p}, xx, tt)
    args, specs = (params, x, t), (P(), video, per_example)
  else:
    fn = lambda p, xx, tt, yy: model.apply({'params': p}, xx, tt, y=yy)
    args, specs = (params, x, t, y), (P(), video, per_example, per_example)
  return jax.shard_map(fn, mesh=mesh, in_specs=specs, out_specs=video)(*args)


def frame_parallel_active(model: Any) -> bool:
  """True if `model.frame_axis` is an axis of size > 1 of the current (`jax.set_mesh`) mesh, outside a shard_map."""
  axis = getattr(model, 'frame_axis', None)
  if axis is None:
    return False
  mesh = jax.sharding.get_abstract_mesh()
  return (axis in mesh.axis_names and axis not in getattr(mesh, 'manual_axes', ()) and mesh.shape[axis] > 1)


def apply_model(model: Any, params: Any, x: jax.Array, t: jax.Array, y: jax.Array | None = None) -> jax.Array:
  """The train step's forward: `apply_frame_parallel` if `frame_parallel_active(model)`, else `model.apply`."""
  if frame_parallel_active(model):
    return apply_frame_parallel(model, params, x, t, y, frame_axis=model.frame_axis)
  return model.apply({'params': params}, x, t, y=y)

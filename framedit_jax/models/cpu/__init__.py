"""XLA CPU backward kernels: the model's CPU-only workarounds, behind one switch, `cpu_kernels`.

Every mechanism here computes the same function, with the same parameters, as the plain layer it replaces (up to
float summation order); what changes is how XLA CPU compiles the backward. With `cpu_kernels=False` (GPU, TPU)
the model files run the plain official layers (`nn.Dense`, einsum, `Linear(concat)`).

One switch turns all of them on together: `config.model.cpu_kernels` ('auto' = on when JAX's default backend is
the CPU, see `cpu.defaults`), `get_model(..., cpu_kernels=True)`, `LatteStyleDiT.cpu_kernels`. They are one switch
because they were measured together (`benchmarks/results/remat_barrier_cpu.jsonl`, `vs_official_cpu.jsonl`), and
because two of them only pay with the others (the split qkv without the barrier made the Latte-S/2 step slower,
4.08 -> 5.47 s side by side on an Intel VM).

  grad_barrier.materialize_cotangent  blocks: the residual-stream cotangent is written once per sublayer input,
                                      instead of being recomputed inside every consumer of it.
  matmul_vjp.matmul / dense_dot_general  every Dense of the blocks and every MatrixLinear W: the backward's two
                                      matmuls as row-major (YNNPACK) matmuls, not Eigen dots on a transposed
                                      cotangent.
  split_dense.SplitDense              the fused qkv Dense (same params) returning q, k, v as column blocks.
  batch_broadcast.broadcast_leading   MatrixLinear's token map U^T as a batched matmul and its bias, each with a
                                      matvec gradient instead of a reduce.
  concat_linear.ConcatLinear          FrameDiT-H's concat fusion `output_linear([a ; b])` without the
                                      concatenation (same params as the Dense).

The helpers below are what the model files call: each takes the switch and returns the plain op when it is off.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from framedit_jax.models.cpu.batch_broadcast import broadcast_leading
from framedit_jax.models.cpu.concat_linear import ConcatLinear
from framedit_jax.models.cpu.grad_barrier import materialize_cotangent
from framedit_jax.models.cpu.matmul_vjp import dense_dot_general, matmul_columns
from framedit_jax.models.cpu.matmul_vjp import matmul as _matmul
from framedit_jax.models.cpu.split_dense import SplitDense

__all__ = ['ConcatLinear', 'SplitDense', 'barrier', 'bias_add', 'broadcast_leading', 'dense_dot_general',
           'dot_general', 'materialize_cotangent', 'matmul', 'matmul_columns', 'token_map']


def barrier(x: jax.Array, on: bool) -> jax.Array:
  """Identity; with `on`, its backward materialises the cotangent (`grad_barrier.materialize_cotangent`)."""
  return materialize_cotangent(x) if on else x


def dot_general(on: bool):
  """The `dot_general=` of an `nn.Dense`: `matmul_vjp.dense_dot_general` with `on`, else None (lax's)."""
  return dense_dot_general if on else None


def matmul(x: jax.Array, w: jax.Array, on: bool) -> jax.Array:
  """`x (..., K) @ w (K, N)` -> `(..., N)`; with `on`, with the backward of `matmul_vjp.matmul`."""
  return _matmul(x, w) if on else jnp.einsum('...k,kn->...n', x, w)


def token_map(u: jax.Array, x: jax.Array, on: bool) -> jax.Array:
  """`U^T X` per frame: u `(N, r)`, x `(..., N, K)` -> `(..., r, K)`.

  With `on`, a batched matmul with U^T broadcast over the leading axes (`broadcast_leading`): the output needs no
  transposing copy and U's gradient is one matvec. Off: the plain einsum.
  """
  if on:
    return jnp.matmul(broadcast_leading(u.T, x.shape[:-2]), x)
  return jnp.einsum('nr,...nk->...rk', u, x)


def bias_add(y: jax.Array, bias: jax.Array, on: bool) -> jax.Array:
  """`y (..., *S) + bias (*S)`; with `on`, the bias gradient is a matvec (`broadcast_leading`)."""
  if on:
    return y + broadcast_leading(bias, y.shape[:y.ndim - bias.ndim])
  return y + bias

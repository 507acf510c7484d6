"""`x @ w` with a backward whose matmuls XLA CPU runs in its fast (YNNPACK) kernels.

Why: JAX's weight gradient of `x (M, K) @ w (K, N)` is a dot contracting the token axis M of both operands. XLA
CPU stores the cotangent transposed for it (a strided copy into which the cotangent's producer is fused; for
`fc2` that recomputes the tanh-GELU in the transposed loop order) and runs the dot in Eigen instead of YNNPACK,
well below the speed of the forward's row-major matmuls, while YNNPACK's threads wait. With this backward the
Latte-S/2 train step (depth 12, B=2, F=16, 16x16 latents, AMD Zen 4) spends 83% of its op time in YNNPACK
matmuls (`benchmarks/results/profile_ops_cpu.jsonl`) and runs at 0.88x the official PyTorch step
(`vs_official_cpu.jsonl`, last header; 1.16x on an Intel VM before this module, first header).

`matmul_columns` has the same value and the same gradients (up to float summation order); its backward writes
both gradients as row-major matmuls: `dx = g @ w^T` with `w^T` (small) materialised, and `dw = x^T @ g` or
`dw = (g^T @ x)^T`, transposing whichever of x (M, K) and g (M, N) is smaller. `lax.optimization_barrier` keeps
XLA's simplifier from folding those transposes back into the dots. With several column blocks (a fused q/k/v
projection) the forward is still one matmul and the backward concatenates the blocks' cotangents into one `(M, N)`
array, so there are two backward matmuls, not two per block.

One of the CPU kernels of `framedit_jax.models.cpu` (switch `cpu_kernels`, 'auto' = on for CPU); GPU/TPU keep the
plain `nn.Dense` / einsum path, whose backward the GPU compiler lays out itself.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

_barrier = jax.lax.optimization_barrier


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def matmul_columns(x: jax.Array, w: jax.Array, splits: int = 1) -> tuple[jax.Array, ...]:
  """`x @ w` returned as `splits` equal column blocks.

  Args:
    x: `(..., K)`; w: `(K, N)` with `splits` dividing N (static int).

  Returns:
    tuple of `splits` arrays `(..., N / splits)`: block i is columns `[i n, (i + 1) n)` of `x @ w`.

  Raises:
    ValueError: `splits` does not divide N or w is not 2-D.
  """
  if w.ndim != 2 or w.shape[1] % splits:
    raise ValueError(f'matmul_columns: w must be (K, N) with splits={splits} dividing N, got {w.shape}.')
  y = jnp.dot(x, w)
  n = w.shape[1] // splits
  return tuple(y[..., i * n:(i + 1) * n] for i in range(splits))


def _fwd(x, w, splits):
  return matmul_columns(x, w, splits), (x, w)


def _materialize(a: jax.Array) -> jax.Array:
  """`a` written to its own buffer (`a * exp(0 a)` = a for finite a), so that a transpose producing it is not
  fused into its consumers (there the optimizer update, which would then read it with a strided pattern)."""
  return a * jnp.exp(a * 0)


def _bwd(splits, res, gs):
  x, w = res
  m = math.prod(x.shape[:-1])
  x2 = x.reshape(m, x.shape[-1])
  g2 = jnp.concatenate([g.reshape(m, -1) for g in gs], axis=-1) if splits > 1 else gs[0].reshape(m, -1)
  dx = jnp.dot(g2, _barrier(w.T))
  if x2.shape[1] <= g2.shape[1]:
    dw = jnp.dot(_barrier(x2.T), g2)
  else:
    dw = _materialize(_barrier(jnp.dot(_barrier(g2.T), x2)).T)
  return dx.reshape(x.shape).astype(x.dtype), dw.astype(w.dtype)


matmul_columns.defvjp(_fwd, _bwd)


def matmul(x: jax.Array, w: jax.Array) -> jax.Array:
  """`x (..., K) @ w (K, N)` -> `(..., N)` with the backward of `matmul_columns`."""
  return matmul_columns(x, w, 1)[0]


def dense_dot_general(lhs: jax.Array, rhs: jax.Array, dimension_numbers, precision=None,
                      preferred_element_type=None) -> jax.Array:
  """Drop-in `lax.dot_general` for `nn.Dense(dot_general=...)`: the Dense contraction (last axis of lhs with the
  first of a 2-D kernel, no batch axes, default precision) goes through `matmul`; anything else is passed to
  `lax.dot_general` unchanged."""
  (lhs_contract, rhs_contract), (lhs_batch, rhs_batch) = dimension_numbers
  if (tuple(lhs_contract) == (lhs.ndim - 1,) and tuple(rhs_contract) == (0,) and not lhs_batch and not rhs_batch
      and rhs.ndim == 2 and precision is None and preferred_element_type is None):
    return matmul(lhs, rhs)
  return jax.lax.dot_general(lhs, rhs, dimension_numbers, precision=precision,
                             preferred_element_type=preferred_element_type)

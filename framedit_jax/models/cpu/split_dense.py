"""A Dense layer whose output is returned as equal column blocks (fused-qkv projections), for XLA CPU.

Why (measured side by side on XLA CPU, jax 0.10, Latte-S/2 depth 12, B=2, F=16, 16x16 latents, unrolled blocks):
slicing q, k and v out of one `(..., 3, heads, head_dim)` Dense output makes JAX's backward assemble the
`(..., 3D)` cotangent by padding and adding the three slices, then copy it transposed for the weight-gradient
matmul (1.78 s per step). Three matmuls, one per column block, avoided the assembly (1.62 s) but ran at the
lower efficiency of `(D, D)` kernels. `matmul_vjp.matmul_columns` keeps one forward matmul and concatenates the
three cotangents in its own backward, which then has two full-width row-major matmuls (see that module).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from framedit_jax.models.cpu.matmul_vjp import matmul_columns


class SplitDense(nn.Module):
  """`nn.Dense(features)` computed as `splits` column blocks: `(..., D_in)` -> tuple of `splits` `(..., features / splits)`.

  Params are exactly those of `nn.Dense(features, use_bias=use_bias, kernel_init=kernel_init)` under the same name
  (`kernel (D_in, features)` float32, `bias (features,)` zeros), so checkpoints, official-weight conversion and LoRA
  merging see an ordinary Dense; block i equals columns `[i * n, (i + 1) * n)` of the Dense output (n = features /
  splits) up to float summation order. Raises ValueError when `splits` does not divide `features`.
  """
  features: int
  splits: int
  use_bias: bool = True
  dtype: Any = jnp.float32
  kernel_init: Any = nn.initializers.xavier_uniform()

  @nn.compact
  def __call__(self, x: jax.Array) -> tuple[jax.Array, ...]:
    if self.features % self.splits:
      raise ValueError(f'SplitDense: splits {self.splits} must divide features {self.features}.')
    kernel = self.param('kernel', self.kernel_init, (x.shape[-1], self.features), jnp.float32)
    bias = self.param('bias', nn.initializers.zeros, (self.features,), jnp.float32) if self.use_bias else None
    n = self.features // self.splits
    x = x.astype(self.dtype)
    outs = matmul_columns(x, kernel.astype(self.dtype), self.splits)
    if bias is not None:
      outs = tuple(y + bias[i * n:(i + 1) * n].astype(self.dtype) for i, y in enumerate(outs))
    return outs

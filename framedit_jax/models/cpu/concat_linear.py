"""FrameDiT-H's concat fusion `output_linear([a ; b])` without writing the concatenation, for XLA CPU.

Why (measured together with the other CPU kernels, `benchmarks/results/vs_official_cpu.jsonl`): the official
`output_linear(torch.cat([local, global], -1))` writes a `(..., 2D)` concatenation in the forward and slices its
cotangent in the backward; two matmuls over the kernel's row blocks do neither.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from framedit_jax.models.cpu.matmul_vjp import matmul


class ConcatLinear(nn.Module):
  """`Linear([a ; b])` without the concatenation: `a @ kernel[:Da] + b @ kernel[Da:] + bias`.

  `a (..., Da)`, `b (..., Db)` -> `(..., features)`. Params `kernel (Da + Db, features)` (xavier over the whole
  kernel, as `nn.Dense` on the concatenation) and `bias (features,)` (zeros): the same parameters, init and numbers
  (up to float summation order) as `nn.Dense(features)` on `concatenate([a, b], -1)`, the official
  `output_linear(torch.cat([a, b], -1))`. Both matmuls use the backward of `matmul_vjp.matmul`.
  """
  features: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, a: jax.Array, b: jax.Array) -> jax.Array:
    da, db = a.shape[-1], b.shape[-1]
    kernel = self.param('kernel', nn.initializers.xavier_uniform(), (da + db, self.features), jnp.float32)
    bias = self.param('bias', nn.initializers.zeros, (self.features,), jnp.float32)
    kernel = kernel.astype(self.dtype)
    y = matmul(a.astype(self.dtype), kernel[:da]) + matmul(b.astype(self.dtype), kernel[da:])
    return y + bias.astype(self.dtype)

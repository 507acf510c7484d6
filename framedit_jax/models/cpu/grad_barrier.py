"""A cotangent barrier: identity in the forward, forces XLA to materialise the incoming cotangent in the backward.

Why (measured, `benchmarks/results/remat_barrier_cpu.jsonl`): in the backward of a block stack, the cotangent of
the residual stream is a long elementwise chain (adaLN gates, two LayerNorm backwards, the sum of the branch
gradients). XLA CPU fuses ("duplicates") that chain into every consumer, among them the transposing copies that
feed the weight-gradient dots, where it runs once more per consumer with a strided access pattern: at Latte-S/2,
depth 12, B=2, F=16, 16x16 latents those `copy_bitcast_fusion` ops took 0.58 s of a 2.1 s step. Putting the
barrier on the input of every sublayer bounds the chain to one sublayer and computes it once; the step takes
~20% less time (same numbers, see `materialize_cotangent`).

What does not work on XLA CPU: `lax.optimization_barrier` (removed before fusion on CPU) and a `lax.cond` with
two identity branches (the conditional simplifier turns it into a select, which fuses again).
"""

import jax
import jax.numpy as jnp


@jax.custom_vjp
def materialize_cotangent(x: jax.Array) -> jax.Array:
  """Identity on any array `x`; its VJP returns `g * exp(0 * g)`.

  For finite g that is exactly g (exp(0) = 1, g * 1 = g: gradients are bit-identical); a non-finite g becomes
  NaN (such a step is non-finite either way). `exp` is an expensive op that XLA's fusion pass will not duplicate
  into several consumers, so the cotangent is written to one buffer that all its consumers read.
  """
  return x


def _fwd(x):
  return x, None


def _bwd(_, g):
  return (g * jnp.exp(g * 0),)


materialize_cotangent.defvjp(_fwd, _bwd)

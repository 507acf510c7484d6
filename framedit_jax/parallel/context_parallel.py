"""Context-parallel softmax attention over a frame-sharded sequence: ring (K/V passed around) and Ulysses (heads).

Inside a `jax.shard_map` that shards the sequence axis L over the mesh axis `axis` (frame parallelism, f shards),
every device holds its own queries, keys and values `(B, L/f, H, d)`. Today's frame-parallel path
(`collectives.gather_frames`) all-gathers K and V, so each device holds every frame's K/V. The two kernels here
hold only their own:

* **ring** (Liu et al., "Ring Attention with Blockwise Transformers", 2023): f steps; at each step a device attends
  its queries to the K/V block it holds, folds the block into a running (max, sum, output) online softmax
  (Milakov & Gimelshein 2018; FlashAttention), and passes the block to its ring neighbour with `lax.ppermute`.
  A `jax.custom_vjp` makes the backward a second ring pass: K/V and their gradient accumulators travel together
  and arrive back at their owner after f shifts, so nothing of size L is ever stored, only `(B, L/f, H)` softmax
  statistics. Works for any head count; needs f ppermutes of K/V per pass.
* **ulysses** (Jacobs et al., "DeepSpeed Ulysses", 2023): an all-to-all turns `(B, L/f, H, d)` into `(B, L, H/f, d)`
  (all tokens, 1/f of the heads), plain attention runs locally, and a second all-to-all restores the sequence
  sharding. Needs `H % f == 0`; moves `4 (f-1)/f^2` of the sequence's q/k/v/out per device instead of the ring's
  `2 (f-1)/f`.

Both equal `softmax(q k^T / sqrt(d)) v` over all L tokens (`tests/test_parallel_context.py` checks values and
gradients against one device). Keys may have a different head dim from values (Matrix Attention: q/k heads of
a*b, v heads of a_v*b; `framedit_jax.models.attention.MatrixAttention`).

This module imports nothing from `framedit_jax.models` (the models import it).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

CONTEXT_PARALLEL = ('gather', 'ring', 'ulysses')


def _scores(q: jax.Array, k: jax.Array, scale: float) -> jax.Array:
  """float32 `(B, H, Lq, Lk)` scaled logits of `(B, Lq, H, d)` queries and `(B, Lk, H, d)` keys."""
  return jnp.einsum('bqhd,bkhd->bhqk', q, k, preferred_element_type=jnp.float32) * scale


def _varying_like(x: jax.Array, ref: jax.Array) -> jax.Array:
  """`x` (a fresh constant) typed as varying over the same manual mesh axes as `ref` (shard_map scan carries)."""
  mat = getattr(jax.typeof(ref), 'manual_axis_type', None)
  vma = tuple(sorted(getattr(mat, 'varying', ()) or getattr(jax.typeof(ref), 'vma', ())))
  return jax.lax.pcast(x, vma, to='varying') if vma else x


def _shift(x: jax.Array, axis: str, size: int) -> jax.Array:
  """Sends this shard's block to shard `i + 1` (mod size) along `axis`."""
  return jax.lax.ppermute(x, axis, perm=[(i, (i + 1) % size) for i in range(size)])


def _ring_forward(q, k, v, axis, size, scale):
  """Online-softmax ring pass. Returns `(out (B, Lq, H, dv) in q.dtype, lse float32 (B, H, Lq))`."""
  b, lq, h, _ = q.shape
  dv = v.shape[-1]

  def fold(carry, kv):
    m, l, o = carry
    kk, vv = kv
    s = _scores(q, kk, scale)  # (B, H, Lq, Lk)
    m_new = jnp.maximum(m, jnp.max(s, axis=-1))
    alpha = jnp.exp(m - m_new)
    p = jnp.exp(s - m_new[..., None])
    l = alpha * l + jnp.sum(p, axis=-1)
    pv = jnp.einsum('bhqk,bkhd->bhqd', p.astype(vv.dtype), vv, preferred_element_type=jnp.float32)
    return m_new, l, alpha[..., None] * o + pv

  m0 = _varying_like(jnp.full((b, h, lq), -jnp.inf, jnp.float32), q)
  carry = (m0, _varying_like(jnp.zeros((b, h, lq), jnp.float32), q),
           _varying_like(jnp.zeros((b, h, lq, dv), jnp.float32), q))

  def step(state, _):
    carry, kk, vv = state
    carry = fold(carry, (kk, vv))
    return (carry, _shift(kk, axis, size), _shift(vv, axis, size)), None

  if size > 1:
    (carry, k, v), _ = jax.lax.scan(step, (carry, k, v), None, length=size - 1)
  m, l, o = fold(carry, (k, v))  # the last block: no shift after it
  out = (o / l[..., None]).transpose(0, 2, 1, 3).astype(q.dtype)
  return out, m + jnp.log(l)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4, 5))
def _ring(q, k, v, axis, size, scale):
  return _ring_forward(q, k, v, axis, size, scale)[0]


def _ring_fwd(q, k, v, axis, size, scale):
  out, lse = _ring_forward(q, k, v, axis, size, scale)
  return out, (q, k, v, out, lse)


def _ring_bwd(axis, size, scale, res, g):
  """Second ring pass: K/V and their gradient accumulators travel together; after `size` shifts the
  accumulators are back at the shard that owns the block (FlashAttention-2 backward, per block)."""
  q, k, v, out, lse = res
  g32 = g.astype(jnp.float32)
  delta = jnp.einsum('bqhd,bqhd->bhq', g32, out.astype(jnp.float32))  # rowsum(dO * O)

  def step(state, _):
    dq, kk, vv, dk, dv = state
    p = jnp.exp(_scores(q, kk, scale) - lse[..., None])  # (B, H, Lq, Lk) probabilities of this block
    dv = dv + jnp.einsum('bhqk,bqhd->bkhd', p, g32)
    dp = jnp.einsum('bqhd,bkhd->bhqk', g, vv, preferred_element_type=jnp.float32)
    ds = p * (dp - delta[..., None]) * scale
    dq = dq + jnp.einsum('bhqk,bkhd->bqhd', ds, kk.astype(jnp.float32))
    dk = dk + jnp.einsum('bhqk,bqhd->bkhd', ds, q.astype(jnp.float32))
    shift = lambda a: _shift(a, axis, size) if size > 1 else a
    return (dq, shift(kk), shift(vv), shift(dk), shift(dv)), None

  zeros = lambda a: _varying_like(jnp.zeros(a.shape, jnp.float32), a)
  (dq, _, _, dk, dv), _ = jax.lax.scan(step, (zeros(q), k, v, zeros(k), zeros(v)), None, length=size)
  return dq.astype(q.dtype), dk.astype(k.dtype), dv.astype(v.dtype)


_ring.defvjp(_ring_fwd, _ring_bwd)


def ring_attention(q: jax.Array, k: jax.Array, v: jax.Array, axis: str, scale: float | None = None) -> jax.Array:
  """Softmax attention of this shard's queries over the keys/values of every shard of `axis`, by ring passing.

  Call inside a `jax.shard_map` whose manual axes include `axis` (each shard holds a contiguous block of L).

  Args:
    q, k: `(B, L/f, H, d)`; v: `(B, L/f, H, dv)` -- this shard's block, shard order = sequence order.
    axis: the mesh axis sharding L.
    scale: logit scale (default `d ** -0.5`).

  Returns:
    `(B, L/f, H, dv)` in q's dtype: this shard's rows of attention over all L tokens. Logits, softmax
    statistics and accumulators are float32.
  """
  size = int(jax.lax.axis_size(axis))
  scale = float(q.shape[-1]**-0.5 if scale is None else scale)
  return _ring(q, k, v, axis, size, scale)


def ulysses_attention(q: jax.Array, k: jax.Array, v: jax.Array, axis: str, scale: float | None = None
                      ) -> jax.Array:
  """Softmax attention over the full sequence by head sharding (two all-to-alls each way).

  Args:
    q, k: `(B, L/f, H, d)`; v: `(B, L/f, H, dv)`; H must be divisible by f = size of `axis`.
    axis, scale: as `ring_attention`.

  Returns:
    `(B, L/f, H, dv)` in q's dtype.

  Raises:
    ValueError: H not divisible by the axis size.
  """
  size = int(jax.lax.axis_size(axis))
  h = q.shape[2]
  if h % size:
    raise ValueError(f"context_parallel='ulysses' needs the head count {h} divisible by mesh.frame={size}; use "
                     "config.model.context_parallel='ring' or a smaller config.mesh.frame.")
  scale = float(q.shape[-1]**-0.5 if scale is None else scale)
  to_heads = lambda a: jax.lax.all_to_all(a, axis, split_axis=2, concat_axis=1, tiled=True)  # (B, L, H/f, d)
  qh, kh, vh = to_heads(q), to_heads(k), to_heads(v)
  weights = jax.nn.softmax(_scores(qh, kh, scale), axis=-1).astype(vh.dtype)
  out = jnp.einsum('bhqk,bkhd->bqhd', weights, vh)
  return jax.lax.all_to_all(out, axis, split_axis=1, concat_axis=2, tiled=True).astype(q.dtype)


def sharded_attention(q: jax.Array, k: jax.Array, v: jax.Array, axis: str, mode: str, scale: float | None = None
                      ) -> jax.Array:
  """`ring_attention` or `ulysses_attention` by name (`config.model.context_parallel`).

  Raises:
    ValueError: mode not 'ring' / 'ulysses' ('gather' is the caller's all-gather path).
  """
  if mode == 'ring':
    return ring_attention(q, k, v, axis, scale)
  if mode == 'ulysses':
    return ulysses_attention(q, k, v, axis, scale)
  raise ValueError(f"config.model.context_parallel must be one of {CONTEXT_PARALLEL}, got {mode!r}.")

"""The layout-saving ops of issue 12 compute what they replace: a custom-VJP broadcast, a concat-free Linear, the
fused qkv Dense as column blocks (alone, inside Attention, and under LoRA's interceptor)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from framedit_jax.models.attention import Attention
from framedit_jax.models.cpu import ConcatLinear, SplitDense, broadcast_leading
from framedit_jax.train import lora as lora_lib


@pytest.mark.parametrize('lead,shape', [((2, 3), (4, 5)), ((7,), (3,)), ((1, 1, 2), (2, 3, 4))])
def test_broadcast_leading_value_and_grad_match_broadcast_to(lead, shape):
  a = jax.random.normal(jax.random.PRNGKey(0), shape)
  w = jax.random.normal(jax.random.PRNGKey(1), (*lead, *shape))

  def loss(fn, x):
    return jnp.sum(jnp.sin(fn(x)) * w)

  ours = lambda x: broadcast_leading(x, lead)
  ref = lambda x: jnp.broadcast_to(x, (*lead, *shape))
  np.testing.assert_array_equal(np.asarray(ours(a)), np.asarray(ref(a)))
  g_ours = jax.jit(jax.grad(lambda x: loss(ours, x)))(a)
  g_ref = jax.grad(lambda x: loss(ref, x))(a)
  assert float(jnp.max(jnp.abs(g_ref))) > 0.1  # the reference gradient is not trivially zero
  np.testing.assert_allclose(np.asarray(g_ours), np.asarray(g_ref), rtol=1e-5, atol=1e-5)


def test_concat_linear_equals_dense_on_the_concatenation():
  a = jax.random.normal(jax.random.PRNGKey(2), (2, 5, 8))
  b = jax.random.normal(jax.random.PRNGKey(3), (2, 5, 8))
  mod = ConcatLinear(6)
  params = mod.init(jax.random.PRNGKey(4), a, b)
  # Give the bias a nonzero value so that it is checked too.
  params = jax.tree_util.tree_map(lambda p: p + 0.3 if p.ndim == 1 else p, params)
  dense = nn.Dense(6)
  assert jax.tree_util.tree_map(jnp.shape, params) == jax.tree_util.tree_map(
      jnp.shape, dense.init(jax.random.PRNGKey(0), jnp.concatenate([a, b], -1)))
  ours = mod.apply(params, a, b)
  ref = dense.apply(params, jnp.concatenate([a, b], -1))
  np.testing.assert_allclose(np.asarray(ours), np.asarray(ref), rtol=1e-5, atol=1e-5)
  ga = jax.grad(lambda p: jnp.sum(mod.apply(p, a, b) ** 2))(params)
  gr = jax.grad(lambda p: jnp.sum(dense.apply(p, jnp.concatenate([a, b], -1)) ** 2))(params)
  jax.tree_util.tree_map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-4), ga, gr)


def test_split_dense_is_a_dense_in_column_blocks():
  x = jax.random.normal(jax.random.PRNGKey(5), (2, 7, 12))
  split = SplitDense(18, 3, kernel_init=nn.initializers.xavier_uniform())
  dense = nn.Dense(18, kernel_init=nn.initializers.xavier_uniform())
  key = jax.random.PRNGKey(6)
  params = split.init(key, x)
  dense_params = dense.init(key, x)
  # Same names, shapes and initial values as nn.Dense: checkpoints and official conversion are unchanged.
  jax.tree_util.tree_map(np.testing.assert_array_equal, params, dense_params)
  params = jax.tree_util.tree_map(lambda p: p + 0.1 if p.ndim == 1 else p, params)
  blocks = split.apply(params, x)
  full = dense.apply(params, x)
  np.testing.assert_allclose(np.concatenate(blocks, -1), np.asarray(full), rtol=1e-5, atol=1e-5)
  w = jax.random.normal(jax.random.PRNGKey(7), full.shape)
  g_split = jax.grad(lambda p, x: jnp.sum(jnp.concatenate(split.apply(p, x), -1) * w), argnums=(0, 1))(params, x)
  g_dense = jax.grad(lambda p, x: jnp.sum(dense.apply(p, x) * w), argnums=(0, 1))(params, x)
  jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5), g_split, g_dense)
  with pytest.raises(ValueError, match='splits 4 must divide features 18'):
    SplitDense(18, 4).init(key, x)


def test_lora_interceptor_on_the_fused_qkv_equals_merged_weights():
  x = jax.random.normal(jax.random.PRNGKey(8), (2, 5, 16))
  attn = Attention(num_heads=4, cpu_kernels=True)
  params = attn.init(jax.random.PRNGKey(9), x)['params']
  cfg = lora_lib.LoraConfig(2, 4.0, ('qkv',))
  adapters = lora_lib.init_lora(params, cfg, jax.random.PRNGKey(10))
  # init_lora starts B at zero; give it values so that the branch matters.
  adapters = jax.tree_util.tree_map(lambda a: a + 0.05, adapters)
  merged = attn.apply({'params': lora_lib.merge_lora(params, adapters, cfg)}, x)
  with lora_lib.lora_interceptor(adapters, cfg):
    unmerged = attn.apply({'params': params}, x)
  base = attn.apply({'params': params}, x)
  assert float(jnp.max(jnp.abs(merged - base))) > 1e-3
  np.testing.assert_allclose(np.asarray(unmerged), np.asarray(merged), rtol=1e-4, atol=1e-5)


def test_cpu_kernels_attention_equals_plain():
  x = jax.random.normal(jax.random.PRNGKey(11), (2, 6, 16))
  fused, split = Attention(num_heads=4), Attention(num_heads=4, cpu_kernels=True)
  params = fused.init(jax.random.PRNGKey(12), x)
  jax.tree_util.tree_map(np.testing.assert_array_equal, params, split.init(jax.random.PRNGKey(12), x))
  params = jax.tree_util.tree_map(lambda p: p + 0.05 if p.ndim == 1 else p, params)
  np.testing.assert_allclose(np.asarray(split.apply(params, x)), np.asarray(fused.apply(params, x)), rtol=1e-5,
                             atol=1e-6)
  gf = jax.grad(lambda p: jnp.sum(fused.apply(p, x) ** 2))(params)
  gs = jax.grad(lambda p: jnp.sum(split.apply(p, x) ** 2))(params)
  jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), gs, gf)

"""LoRA on the T2V transformer: zero-B identity, merged == unmerged, only adapters train, bad targets."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from framedit_jax.convert.t2v import sample_inputs
from framedit_jax.models.t2v import LatteT2V
from framedit_jax.train.lora import LoraConfig, count_params, init_lora, lora_interceptor, merge_lora

TINY = dict(num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=8, num_layers=1,
            cross_attention_dim=16, sample_size=4, patch_size=2, caption_channels=8, video_length=2)


@pytest.fixture(scope='module')
def setup():
  model = LatteT2V(**TINY)
  key = jax.random.key(0)
  x = jax.random.normal(key, (2, 2, 4, 4, 4))
  t = jnp.array([3, 700])
  y = jax.random.normal(jax.random.fold_in(key, 1), (2, 5, 8))
  shapes = jax.eval_shape(model.init, key, *sample_inputs(model))['params']
  rng = np.random.default_rng(0)  # random params (no zero-init output layers), without compiling init
  params = jax.tree.map(lambda s: jnp.asarray(0.2 * rng.standard_normal(s.shape), jnp.float32), shapes)
  return model, params, (x, t, y)


def test_zero_b_is_identity_and_merged_equals_unmerged(setup):
  model, params, inputs = setup
  cfg = LoraConfig(rank=4, alpha=8.0)
  lora = init_lora(params, cfg, jax.random.key(1))
  # 4 targets x (1 spatial self + 1 cross + 1 temporal attention); rank 4 x (in + out)
  assert count_params(lora) == 3 * (3 * 4 * (16 + 16) + 4 * (16 + 16))
  apply = jax.jit(lambda p: model.apply({'params': p}, *inputs))
  base = apply(params)
  np.testing.assert_array_equal(apply(merge_lora(params, lora, cfg)), base)
  lora = jax.tree_util.tree_map(lambda a: a + 0.3 * jax.random.normal(jax.random.key(a.size), a.shape), lora)
  merged = apply(merge_lora(params, lora, cfg))

  @jax.jit
  def unmerged_fn(p, adapters):
    with lora_interceptor(adapters, cfg):
      return model.apply({'params': p}, *inputs)
  unmerged = unmerged_fn(params, lora)
  assert np.abs(merged - base).max() > 1e-2
  np.testing.assert_allclose(unmerged, merged, rtol=0, atol=1e-5)


def test_only_adapters_train(setup):
  model, params, (x, t, y) = setup
  cfg = LoraConfig(rank=2, alpha=2.0, target_modules=('to_q', 'to_out.0'))
  lora = init_lora(params, cfg, jax.random.key(2))
  target = jnp.zeros(x.shape[:-1] + (8,))

  def loss_fn(lora_params):
    p = merge_lora(jax.lax.stop_gradient(params), lora_params, cfg)
    return jnp.mean((model.apply({'params': p}, x, t, y) - target) ** 2)
  opt = optax.adamw(1e-2)
  state = opt.init(lora)
  assert count_params(state) == 2 * count_params(lora) + 1  # mu, nu (+ count): adapters only

  @jax.jit
  def step(lora, state):
    loss, grads = jax.value_and_grad(loss_fn)(lora)
    updates, state = opt.update(grads, state, lora)
    return optax.apply_updates(lora, updates), state, loss
  losses = []
  for _ in range(4):
    lora, state, loss = step(lora, state)
    losses.append(float(loss))
  assert losses[-1] < losses[0]
  b = lora['transformer_blocks_0']['attn1']['to_q']['lora_b']
  assert np.abs(b).max() > 0  # B left zero-init and moved
  assert 'to_k' not in lora['transformer_blocks_0']['attn1']


def test_bad_targets():
  with pytest.raises(ValueError, match='match no Dense layer.*to_q'):
    init_lora({'blk': {'to_q': {'kernel': jnp.zeros((2, 2))}}}, LoraConfig(target_modules=('qkv',)),
              jax.random.key(0))
  with pytest.raises(ValueError, match='rank'):
    init_lora({}, LoraConfig(rank=0), jax.random.key(0))

"""`model.remat_policy` on the T2V models: every spatial and temporal block is rematerialised (a `checkpoint` in
the gradient's jaxpr), with the same parameters, outputs and gradients as without; the task passes the
config's resolved policy to the model."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from framedit_jax.models.t2v import FrameDiTHT2V, LatteT2V
from framedit_jax.train.tasks import t2v as t2v_task

TINY = dict(num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=8, num_layers=2,
            cross_attention_dim=32, attention_bias=True, sample_size=8, patch_size=2, norm_eps=1e-6,
            caption_channels=24, video_length=4)
MODELS = {'latte_t2v': (LatteT2V, {}),
          'framedit_h_t2v': (FrameDiTHT2V, dict(num_patches=16, num_col_heads=8, qk_col_dim=8, v_col_dim=16))}


def _count_checkpoints(jaxpr) -> int:
  n = 0
  for eqn in jaxpr.eqns:
    n += eqn.primitive.name in ('checkpoint', 'remat', 'remat2')
    for v in eqn.params.values():
      inner = getattr(v, 'jaxpr', None)
      if inner is not None and hasattr(inner, 'eqns'):
        n += _count_checkpoints(inner)
      elif hasattr(v, 'eqns'):
        n += _count_checkpoints(v)
  return n


@pytest.mark.parametrize('name', sorted(MODELS))
def test_remat_keeps_params_values_and_gradients(name):
  cls, extra = MODELS[name]
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(2, 4, 8, 8, 4)), jnp.float32)
  t = jnp.asarray([3, 700])
  text = jnp.asarray(rng.normal(size=(2, 5, 24)), jnp.float32)
  mask = jnp.asarray([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], jnp.float32)
  plain, remat = cls(**TINY, **extra), cls(**TINY, **extra, remat_policy='full')
  params = plain.init(jax.random.PRNGKey(0), x, t, text, mask)['params']
  params_r = remat.init(jax.random.PRNGKey(0), x, t, text, mask)['params']
  assert jax.tree.structure(params) == jax.tree.structure(params_r)  # same names: checkpoints interchange

  def loss(model):
    return lambda p: jnp.mean(model.apply({'params': p}, x, t, text, mask) ** 2)

  np.testing.assert_allclose(remat.apply({'params': params}, x, t, text, mask),
                             plain.apply({'params': params}, x, t, text, mask), rtol=1e-6, atol=1e-6)
  g, g_r = jax.grad(loss(plain))(params), jax.grad(loss(remat))(params)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), g, g_r)
  # rematerialised: one checkpoint per spatial and per temporal block, none without the policy
  assert _count_checkpoints(jax.make_jaxpr(jax.grad(loss(remat)))(params).jaxpr) >= 2 * TINY['num_layers']
  assert _count_checkpoints(jax.make_jaxpr(jax.grad(loss(plain)))(params).jaxpr) == 0


def test_task_passes_the_resolved_policy():
  from configs import t2v_demo  # pylint: disable=g-import-not-at-top
  config = t2v_demo.get_config()
  assert t2v_task.model_overrides(config, 24, 4, 8)['remat_policy'] == 'none'  # 'auto' on CPU
  config.model.remat_policy = 'dots_saveable'
  assert t2v_task.model_overrides(config, 24, 4, 8)['remat_policy'] == 'dots_saveable'  # explicit wins

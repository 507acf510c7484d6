"""FLOP model of the Latte design space and VideoDiT 2D->3D against XLA's count and the Latte-S/2 model."""

import jax
import jax.numpy as jnp
import pytest

from framedit_jax.models import flops as F
from framedit_jax.models import get_model
from benchmarks.design_flops import design_forward_flops, design_table

TINY = dict(depth=2, hidden_size=64, num_heads=2)


def test_variant_1_equals_the_latte_flop_model_and_table_rows():
  for size, frames in ((32, 16), (16, 8)):
    latte = F.forward_flops(F.shape_from_name('Latte-S/2', input_size=size, num_frames=frames))['total']
    assert design_forward_flops('LatteV1-S/2', input_size=size, num_frames=frames)['total'] == latte
  rows = {r[0]: r[3] for r in design_table()}
  assert rows['Tubelet s=2'] < 0.51 * rows['Variant 1 (default)']  # half the tokens
  assert rows['VideoDiT 2D->3D'] > 2 * rows['Variant 1 (default)']  # (T N)^2 attention at N = 256, T = 16


@pytest.mark.parametrize('name,opts', [
    ('LatteV3-S/2', {}),
    ('LatteV4-S/2', dict(conditioning='tokens')),
    ('LatteV2-S/2', dict(patch_embed='tubelet', tubelet_size=2, temporal_pos='rope')),
    ('VideoDiT-S/2', {}),
])
def test_design_flops_match_xla(name, opts):
  model = get_model(name, input_size=16, num_frames=8, **TINY, **opts)
  x, t = jnp.zeros((1, 8, 16, 16, 4)), jnp.zeros((1,), jnp.int32)
  params = jax.eval_shape(lambda: model.init({'params': jax.random.PRNGKey(0)}, x, t))['params']
  cost = jax.jit(lambda p, x, t: model.apply({'params': p}, x, t)).lower(params, x, t).cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  analytic = design_forward_flops(name, input_size=16, num_frames=8, **TINY, **opts)['total']
  assert 1.0 <= float(cost['flops']) / analytic < 1.12, (name, opts, analytic, cost['flops'])

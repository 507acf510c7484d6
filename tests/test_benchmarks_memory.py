"""Matrix Attention keeps its score tensors at C*R*T^2 per batch element (no N*T^2 tensor beyond Local's).

Reference: the closed form `framedit_jax.models.flops.temporal_attention_score_elements` (supplement §1, Eq. 11-13),
checked against every array shape in the *compiled* HLO of one temporal block's forward + backward. Shapes are
chosen so that T, N, C, R and T*N are all distinct, so a dimension equal to T can only be a frame axis.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from framedit_jax.models import flops as F
from framedit_jax.models.blocks import DiTBlock

B, T, N, D, R, C, QK, V = 1, 6, 100, 32, 2, 64, 64, 128
_SHAPE = re.compile(r'\b(?:f32|bf16|f16)\[([0-9,]*)\]')


def _score_shapes(mixer):
  """Element counts of HLO arrays with two frame axes (T, T) or one T*T axis, for fwd+bwd of one block."""
  block = DiTBlock(D, R, mixer, qk_col_dim=QK, v_col_dim=V, num_col_heads=C)
  x = jnp.ones((B, T, N, D))
  c = jnp.ones((B, D))
  params = block.init(jax.random.PRNGKey(0), x, c)
  loss = lambda p, x: jnp.sum(block.apply(p, x, c)**2)
  text = jax.jit(jax.value_and_grad(loss)).lower(params, x).compile().as_text()
  out = set()
  for m in _SHAPE.finditer(text):
    dims = [int(v) for v in m.group(1).split(',') if v]
    if dims.count(T) + 2 * dims.count(T * T) >= 2 or dims.count(T * N) >= 2:
      out.add(int(np.prod(dims)))
  return out


def _shape(temporal):
  return F.ModelShape(temporal=temporal, depth=2, hidden_size=D, num_heads=R, patch_size=1, input_size=10,
                      num_frames=T, qk_col_dim=QK, v_col_dim=V, num_col_heads=C, batch_size=B)


@pytest.mark.parametrize('mixer', ['matrix', 'hybrid'])  # hybrid also holds Local's map
def test_largest_score_tensor_is_analytic(mixer):
  sizes = _score_shapes(mixer)
  local = F.temporal_attention_score_elements(_shape('local'))
  matrix = F.temporal_attention_score_elements(_shape('matrix'))
  assert local == B * N * R * T * T and matrix == B * C * R * T * T
  if mixer == 'matrix':
    assert max(sizes) == matrix  # C*R*T^2: no N*T^2 tensor at all
  else:
    assert max(sizes) == local and matrix in sizes  # H: Local's map plus the C*R*T^2 one, nothing larger
  assert F.temporal_attention_score_elements(_shape('hybrid')) == local + matrix


def test_full3d_materialises_tn_squared():
  sizes = _score_shapes('full3d')
  assert max(sizes) == F.temporal_attention_score_elements(_shape('full3d')) == B * R * (T * N)**2

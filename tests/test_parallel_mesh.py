"""Mesh shape resolution and the fsdp sharding rule."""

import ml_collections
import pytest

from framedit_jax.parallel.mesh import fsdp_spec, mesh_shape
from jax.sharding import PartitionSpec as P


def _cfg(data, fsdp, frame):
  return ml_collections.ConfigDict(dict(data=data, fsdp=fsdp, frame=frame))


def test_mesh_shape_fills_minus_one():
  assert mesh_shape(_cfg(-1, 2, 2), 8) == (2, 2, 2)
  assert mesh_shape(_cfg(2, -1, 1), 8) == (2, 4, 1)
  assert mesh_shape(_cfg(-1, 1, 1), 1) == (1, 1, 1)


@pytest.mark.parametrize('cfg,n', [((-1, -1, 1), 8), ((3, 1, 1), 8), ((-1, 3, 1), 8)])
def test_mesh_shape_errors_name_the_field(cfg, n):
  with pytest.raises(ValueError, match='config.mesh'):
    mesh_shape(_cfg(*cfg), n)


def test_fsdp_rule_shards_largest_divisible_dim():
  assert fsdp_spec((1152, 6912), 4) == P(None, 'fsdp')
  assert fsdp_spec((6912, 1152), 4) == P('fsdp', None)
  assert fsdp_spec((1155, 7), 4) == P()  # nothing divisible
  assert fsdp_spec((8,), 4) == P()  # too small to bother
  assert fsdp_spec((1152, 6912), 1) == P()


def test_fsdp_replicated_finds_what_the_rule_cannot_shard():
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from framedit_jax.parallel.mesh import fsdp_replicated  # pylint: disable=g-import-not-at-top
  s = lambda *shape: jax.ShapeDtypeStruct(shape, np.float32)
  # XL widths: 1152 and 3456 are not multiples of 256, 4608 is; the (8,) bias is small and replicated by design.
  state = {'qkv': s(1152, 3456), 'fc1': s(1152, 4608), 'bias': s(8)}
  total = 1152 * 3456 + 1152 * 4608 + 8
  frac, example = fsdp_replicated(state, 256)
  assert frac == pytest.approx(1152 * 3456 / total)
  assert example == "['qkv'] (1152, 3456)"
  assert fsdp_replicated(state, 16) == (0.0, None)  # 16 divides every width: all sharded
  assert fsdp_replicated(state, 1) == (0.0, None)

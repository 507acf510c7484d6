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

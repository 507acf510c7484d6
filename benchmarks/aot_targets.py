"""Compile-only devices of a hardware target named on the command line (benchmarks/aot.py `--target`).

  tpu:<gen>:<topology>   e.g. tpu:v5p:1x1x1 (one chip), tpu:v5e:2x2, tpu:v5e:16x16, tpu:v5p:2x2x1, tpu:v5p:8x8x8, tpu:v6e:16x16, tpu:v4:2x2x1
                         (libtpu, `pip install 'jax[tpu]'`; the name is the chip grid, not the slice name
                         'v5e-256'; v4 compiles with chip_config_name='megacore'; tpu7x chips show as 2 devices)
  cuda:h100x<N>          N H100 80 GB SXM devices (jax-cuda12-plugin with JAX_PLATFORMS=cpu; the device numbers are
                         XLA's target-config spec benchmarks/aot_specs/h100_sxm.txtpb)

The devices come from `jax.experimental.topologies.get_topology_desc`: the real TPU / GPU compiler runs, nothing
executes. HBM per device is what the compiler reports as available (TPU: the figure in its RESOURCE_EXHAUSTED
message, e.g. 'exceeds available HBM (15.75G)' on v5e; H100: the spec's device_memory_size), since compile-only
devices have no memory_stats().
"""

from __future__ import annotations

import dataclasses
import math
import os
import re

SPEC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'aot_specs')
GiB = 1024**3

# Usable HBM per device the TPU compiler reports (RESOURCE_EXHAUSTED messages seen with libtpu 0.0.42).
# v4: nominal 32 GiB (not seen in a compiler message).
TPU_HBM = {'v5e': 15.75 * GiB, 'v5p': 95.74 * GiB, 'v6e': 31.25 * GiB, 'tpu7x': 94.75 * GiB, 'v4': 32 * GiB}
CUDA_SPECS = {'h100': ('h100_sxm.txtpb', 84942979072)}


@dataclasses.dataclass(frozen=True)
class Target:
  """A parsed `--target`: platform ('tpu' | 'cuda'), chip ('v5e', 'h100', ...), topology string, device count."""
  name: str
  platform: str
  chip: str
  topology: str
  num_chips: int

  @property
  def hbm_bytes(self) -> float:
    return TPU_HBM[self.chip] if self.platform == 'tpu' else float(CUDA_SPECS[self.chip][1])


def parse_target(text: str) -> Target:
  """`tpu:v5e:2x2` / `cuda:h100x8` -> Target.

  Raises:
    ValueError: one line naming the accepted forms.
  """
  m = re.fullmatch(r'tpu:(v4|v5e|v5p|v6e|tpu7x):(\d+(?:x\d+){1,2})', text)
  if m:
    return Target(text, 'tpu', m.group(1), m.group(2), math.prod(int(a) for a in m.group(2).split('x')))
  m = re.fullmatch(r'cuda:(h100)x(\d+)', text)
  if m:
    return Target(text, 'cuda', m.group(1), f'1x1x{m.group(2)}', int(m.group(2)))
  raise ValueError(f'--target={text!r}: use tpu:<v4|v5e|v5p|v6e|tpu7x>:<chip grid, e.g. 2x2, 16x16, 2x2x1> or '
                   'cuda:h100x<N>.')


def devices(target: Target):
  """The target's compile-only devices (`jax.experimental.topologies.get_topology_desc(...).devices`).

  Raises:
    RuntimeError: libtpu / the CUDA plugin is missing (one line with the install command).
  """
  import jax  # pylint: disable=g-import-not-at-top
  from jax.experimental import topologies  # pylint: disable=g-import-not-at-top
  try:
    if target.platform == 'tpu':
      kw = {'chip_config_name': 'megacore'} if target.chip == 'v4' else {}
      if target.num_chips < 4:  # a slice smaller than one host (e.g. tpu:v5p:1x1x1, one chip)
        dims = [int(a) for a in target.topology.split('x')]
        kw['chips_per_host_bounds'] = tuple(dims + [1] * (3 - len(dims)))
      return topologies.get_topology_desc(platform='tpu', topology_name=f'{target.chip}:{target.topology}',
                                          **kw).devices
    with open(os.path.join(SPEC_DIR, CUDA_SPECS[target.chip][0])) as f:
      spec = f.read()
    return topologies.get_topology_desc(platform='cuda', topology_name='', target_config=spec,
                                        topology=target.topology).devices
  except (RuntimeError, ValueError, KeyError, jax.errors.JaxRuntimeError) as e:
    extra = "'jax[tpu]==0.10.2'" if target.platform == 'tpu' else "'jax[cuda12-local]==0.10.2' (JAX_PLATFORMS=cpu)"
    raise RuntimeError(f'--target={target.name}: no compile-only devices ({str(e).splitlines()[0][:200]}); '
                       f"install with pip install -e '.[aot]' {extra}.") from e

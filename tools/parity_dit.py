"""Parity of framedit_jax's image DiT with the official facebookresearch/DiT `models.py` (random weights, fp32).

    python tools/parity_dit.py --official-src /work/ref/DiT [--timm-src /tmp/timm] [--write-fixture]

The official `models.py` (imported at run time from --official-src, never copied here) needs
`timm.models.vision_transformer.{PatchEmbed, Attention, Mlp}`. With `--timm-src` pointing at an unpacked timm
wheel (`pip download timm --no-deps; python -m zipfile -e timm-*.whl DIR`) the real timm classes are used; timm's
package import pulls torchvision, which is replaced by an inert stand-in when it is not installed (only its
names are needed at import time). Without timm the minimal stand-ins of tools/parity_official.py are used, plus
an `Attention` with timm's structure (qkv Linear with bias, proj Linear).

For each case: build the official DiT, fill every tensor that the state_dict holds and that requires grad with
exact 4-bit codes * scale + offset, run the official forward (eval), convert with
`framedit_jax.convert.image_dit.convert_dit_state_dict`, compare. `--write-fixture` writes
tests/fixtures/models/dit_parity.npz for tests/test_image_dit.py (no torch needed there).
"""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
import types

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from parity_official import decode, install_timm_stub, pack_nibbles, random_codes  # noqa: E402

FIXTURE = os.path.join(os.path.dirname(__file__), '..', 'tests', 'fixtures', 'models', 'dit_parity.npz')
TINY = dict(depth=2, hidden_size=32, num_heads=2, input_size=8)
# case: (our name, overrides, batch labels or None)
CASES = {
    'dit_class': ('DiT-S/2', dict(num_classes=10, learn_sigma=True), [3, 10]),  # 10 = the null label
    'dit_p4_nosigma': ('DiT-S/4', dict(num_classes=5, learn_sigma=False), [0, 4]),
}


class _InertModule(importlib.abc.MetaPathFinder, importlib.abc.Loader):
  """Makes `import torchvision[.x]` succeed with modules whose attributes are empty classes (import-time only)."""

  class _Meta(type):
    def __getattr__(cls, attr):
      if attr.startswith('__'):
        raise AttributeError(attr)
      return _InertModule._Meta(attr, (), {})

  def find_spec(self, name, path, target=None):
    if name == 'torchvision' or name.startswith('torchvision.'):
      return importlib.machinery.ModuleSpec(name, self, is_package=True)
    return None

  def create_module(self, spec):
    mod = types.ModuleType(spec.name)
    mod.__path__ = []

    def getattr_(attr):
      if attr.startswith('__'):
        raise AttributeError(attr)
      return _InertModule._Meta(attr, (), {})
    mod.__getattr__ = getattr_
    return mod

  def exec_module(self, module):
    del module


def install_timm(timm_src: str | None) -> str:
  """Makes `timm.models.vision_transformer` importable; returns 'timm <version>' or 'stub'."""
  if timm_src:
    sys.path.insert(0, timm_src)
  try:
    import torchvision  # noqa: F401  pylint: disable=unused-import,g-import-not-at-top
  except ImportError:
    sys.meta_path.insert(0, _InertModule())
  try:
    import timm  # pylint: disable=g-import-not-at-top
    from timm.models import vision_transformer  # noqa: F401  pylint: disable=unused-import,g-import-not-at-top
    return f'timm {timm.__version__}'
  except ImportError:
    pass
  install_timm_stub()
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top

  class Attention(nn.Module):
    """timm Attention: qkv Linear -> (3, heads, head_dim) -> softmax(q k^T / sqrt(hd)) v -> proj Linear."""

    def __init__(self, dim, num_heads=8, qkv_bias=False, **_):
      super().__init__()
      self.num_heads = num_heads
      self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
      self.proj = nn.Linear(dim, dim)

    def forward(self, x):
      b, n, c = x.shape
      qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
      out = torch.nn.functional.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
      return self.proj(out.transpose(1, 2).reshape(b, n, c))

  sys.modules['timm.models.vision_transformer'].Attention = Attention
  return 'stub'


def load_official(src: str):
  path = os.path.join(src, 'models.py')
  if not os.path.exists(path):
    raise FileNotFoundError(f'--official-src: {path} not found; pass the facebookresearch/DiT checkout root.')
  spec = importlib.util.spec_from_file_location('official_dit_models', path)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod


def run_case(src: str, case: str, seed: int = 0):
  import torch  # pylint: disable=g-import-not-at-top
  name, ours, labels = CASES[case]
  mod = load_official(src)
  p = int(name.rsplit('/', 1)[1])
  torch.manual_seed(seed)
  model = mod.DiT(input_size=TINY['input_size'], patch_size=p, in_channels=4, hidden_size=TINY['hidden_size'],
                  depth=TINY['depth'], num_heads=TINY['num_heads'], num_classes=ours['num_classes'],
                  learn_sigma=ours['learn_sigma'], class_dropout_prob=0.1).eval()
  rng = np.random.default_rng(seed)
  coded, raw = {}, {}
  with torch.no_grad():
    trainable = {n for n, q in model.named_parameters() if q.requires_grad}
    for key, tensor in model.state_dict().items():
      if key in trainable:
        codes, scale, offset = random_codes(key, tuple(tensor.shape), rng)
        tensor.copy_(torch.from_numpy(decode(codes, scale, offset)))
        coded[key] = (codes, scale, offset)
      else:
        raw[key] = tensor.detach().cpu().numpy().astype(np.float32)
  size = TINY['input_size']
  x_codes = np.clip(np.round(rng.standard_normal((2, size, size, 4)) * 32), -127, 127).astype(np.int8)
  x = x_codes.astype(np.float32) / np.float32(32.0)  # (B, H, W, C)
  t = np.array([17, 942], np.int64)
  y = np.array(labels, np.int64)
  with torch.no_grad():
    out = model(torch.from_numpy(np.transpose(x, (0, 3, 1, 2))), torch.from_numpy(t), torch.from_numpy(y))
  out = np.transpose(out.numpy(), (0, 2, 3, 1))
  overrides = dict(TINY, **ours)
  return dict(name=name, overrides=overrides, coded=coded, raw=raw, x=x, x_codes=x_codes, t=t, y=y, out=out)


def ours_forward(result) -> np.ndarray:
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from framedit_jax.convert.image_dit import convert_dit_state_dict  # pylint: disable=g-import-not-at-top
  from framedit_jax.models.image_dit import get_image_dit  # pylint: disable=g-import-not-at-top
  sd = {k: decode(*v) for k, v in result['coded'].items()}
  sd.update(result['raw'])
  params = convert_dit_state_dict(sd, result['name'], **result['overrides'])
  module = get_image_dit(result['name'], **result['overrides'])
  return np.asarray(module.apply({'params': params}, jnp.asarray(result['x']), jnp.asarray(result['t']),
                                 jnp.asarray(result['y'])))


def write_fixture(results: dict, path: str, source: str) -> None:
  arrays, meta = {}, {'__source__': source}
  for case, r in results.items():
    meta[case] = dict(name=r['name'], overrides=r['overrides'],
                      coded={k: list(v[0].shape) for k, v in sorted(r['coded'].items())}, raw=sorted(r['raw']))
    for key, (codes, scale, offset) in r['coded'].items():
      arrays[f'{case}|q|{key}'] = pack_nibbles(codes)
      arrays[f'{case}|s|{key}'] = np.array([scale, offset], np.float32)
    for key, value in r['raw'].items():
      arrays[f'{case}|r|{key}'] = value
    arrays[f'{case}|xq'] = r['x_codes']
    arrays[f'{case}|t'] = r['t'].astype(np.int32)
    arrays[f'{case}|y'] = r['y'].astype(np.int32)
    arrays[f'{case}|out'] = r['out']
  arrays['__meta__'] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  np.savez_compressed(path, **arrays)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--official-src', required=True, help='root of the facebookresearch/DiT checkout')
  parser.add_argument('--timm-src', default=None, help='directory holding an unpacked timm package (optional)')
  parser.add_argument('--tol', type=float, default=1e-5, help='max abs diff allowed (fp32)')
  parser.add_argument('--write-fixture', action='store_true', help=f'write {os.path.normpath(FIXTURE)}')
  args = parser.parse_args(argv)
  source = install_timm(args.timm_src)
  print(f'official DiT from {args.official_src}, timm layers: {source}')
  results, worst = {}, 0.0
  for case in CASES:
    r = run_case(args.official_src, case)
    diff = float(np.abs(ours_forward(r) - r['out']).max())
    worst = max(worst, diff)
    print(f'{case:16s} {r["name"]:10s} out {tuple(r["out"].shape)} |out|max {np.abs(r["out"]).max():7.3f} '
          f'max abs diff {diff:.2e} {"OK" if diff <= args.tol else "FAIL"}')
    results[case] = r
  if args.write_fixture:
    write_fixture(results, FIXTURE, source)
    print(f'wrote {os.path.normpath(FIXTURE)} ({os.path.getsize(FIXTURE) / 1024:.0f} KiB)')
  return 0 if worst <= args.tol else 1


if __name__ == '__main__':
  sys.exit(main())

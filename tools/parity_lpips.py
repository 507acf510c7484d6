"""Parity of framedit_jax.eval.lpips with the `lpips` package (v0.1, PyTorch, CPU) on hash-generated weights.

    pip install lpips --no-deps   # its torchvision dependency would replace torch==2.13.0
    python tools/parity_lpips.py [--write-fixture]

torchvision is not installed next to torch==2.13.0, so a stand-in `torchvision.models` with `vgg16()` and
`alexnet()` whose `.features` has torchvision's exact layer structure and state_dict names is put in
`sys.modules` before lpips is imported. Backbone and lin weights come from tests/_hash_weights.py (regenerable
from their names), so the fixture tests/fixtures/eval/lpips_parity.npz holds only the lpips outputs (inputs are hashed too);
tests/test_eval_lpips.py checks it without torch or lpips.
"""

from __future__ import annotations

import argparse
import os
import sys
import types

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
sys.path[:0] = [ROOT, os.path.join(ROOT, 'tests')]
from _hash_weights import fan_in_std, hash_codes, hash_tensor  # pylint: disable=g-import-not-at-top,wrong-import-position

FIXTURE = os.path.join(ROOT, 'tests', 'fixtures', 'eval', 'lpips_parity.npz')
SIZE = {'vgg': 32, 'alex': 64}


def install_torchvision_stub() -> None:
  """`torchvision.models.{vgg16, alexnet}` with torchvision's `features` Sequential (indices = state_dict names)."""
  from torch import nn

  def vgg16(pretrained=False, **_):
    layers, c = [], 3
    for v in [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M']:
      if v == 'M':
        layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
      else:
        layers += [nn.Conv2d(c, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
        c = v
    return types.SimpleNamespace(features=nn.Sequential(*layers))

  def alexnet(pretrained=False, **_):
    return types.SimpleNamespace(features=nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2)))

  def unavailable(*_, **__):
    raise NotImplementedError('torchvision stand-in: only vgg16 and alexnet')

  models = types.ModuleType('torchvision.models')
  models.vgg16, models.alexnet, models.squeezenet1_1 = vgg16, alexnet, unavailable
  tv = types.ModuleType('torchvision')
  tv.models = models
  sys.modules.update({'torchvision': tv, 'torchvision.models': models})


def hashed_state_dicts(net: str) -> tuple[dict, dict]:
  """(torchvision backbone state_dict, lpips lin state_dict) as float32 numpy, regenerated from key names."""
  from framedit_jax.eval import lpips as ours
  backbone = {}
  c = 3
  for layer in ours.ARCH[net]['layers']:
    if layer[0] != 'conv':
      continue
    _, idx, ch, k, _, _ = layer
    shape = (ch, c, k, k)
    backbone[f'features.{idx}.weight'] = hash_tensor(f'{net}.features.{idx}.weight', shape, fan_in_std(shape))
    backbone[f'features.{idx}.bias'] = hash_tensor(f'{net}.features.{idx}.bias', (ch,), 0.05)
    c = ch
  lin = {f'lin{k}.model.1.weight': np.abs(hash_tensor(f'{net}.lin{k}', (1, ch, 1, 1), 0.3, offset=0.2))
         for k, ch in enumerate(ours.ARCH[net]['channels'])}
  return backbone, lin


def inputs(net: str) -> np.ndarray:
  """(2, 2, H, W, 3) int8 codes of x and y; images = codes / 127 in [-1, 1]. y is x plus a perturbation."""
  s = SIZE[net]
  x = hash_codes(f'{net}.x', (3, s, s, 3), levels=255)
  y = np.clip(x + hash_codes(f'{net}.dy', x.shape, levels=121), -127, 127)
  y[2] = x[2]  # an identical pair: distance 0
  return np.stack([x, y]).astype(np.int8)


def official(net: str, codes: np.ndarray) -> np.ndarray:
  import torch
  install_torchvision_stub()
  import lpips  # pylint: disable=g-import-not-at-top
  model = lpips.LPIPS(net=net, version='0.1', pretrained=False, pnet_rand=True, verbose=False).eval()
  backbone, lin = hashed_state_dicts(net)
  with torch.no_grad():
    tv_names = {name.split('.', 2)[2]: name for name in model.state_dict() if name.startswith('net.slice')}
    for key, value in backbone.items():
      model.state_dict()[tv_names[key.split('.', 1)[1]]].copy_(torch.from_numpy(value))
    for key, value in lin.items():
      model.state_dict()[key].copy_(torch.from_numpy(value))
    x, y = (torch.from_numpy(codes[i].astype(np.float32) / np.float32(127.0)).permute(0, 3, 1, 2) for i in (0, 1))
    out = model(x, y).reshape(-1).numpy()
  return out


def ours(net: str, codes: np.ndarray) -> np.ndarray:
  from framedit_jax.eval import lpips, lpips_convert
  import jax.numpy as jnp
  arrays = lpips_convert.convert_state_dicts(*hashed_state_dicts(net), net)
  params = {'params': {}}
  for key, value in arrays.items():
    node = params['params']
    *path, leaf = key.split('/')
    for p in path:
      node = node.setdefault(p, {})
    node[leaf] = jnp.asarray(value)
  x, y = (codes[i].astype(np.float32) / np.float32(127.0) for i in (0, 1))
  return np.asarray(lpips.lpips_distance(params, x, y, net))


def main():
  p = argparse.ArgumentParser()
  p.add_argument('--write-fixture', action='store_true')
  a = p.parse_args()
  fixture = {}
  for net in ('vgg', 'alex'):
    codes = inputs(net)
    ref = official(net, codes)
    got = ours(net, codes)
    err = float(np.abs(ref - got).max())
    print(f'{net}: lpips {ref}  ours {got}  max|diff| {err:.2e}')
    assert err <= 1e-5, err
    fixture[f'{net}|out'] = ref.astype(np.float32)
  if a.write_fixture:
    os.makedirs(os.path.dirname(FIXTURE), exist_ok=True)
    np.savez_compressed(FIXTURE, **fixture)
    print('wrote', FIXTURE, os.path.getsize(FIXTURE), 'bytes')


if __name__ == '__main__':
  main()

"""Converts the LPIPS torch weights (torchvision backbone + lpips lin layers) into one .npz for ``lpips.load_lpips``.

    python -m framedit_jax.eval.lpips_convert --backbone=vgg16-397923af.pth --net=vgg --out=lpips_vgg.npz

The backbone file is a torchvision ImageNet state_dict (``features.<i>.{weight,bias}``; ``classifier.*`` is
ignored). The lin layers are read from the installed ``lpips`` package (``lpips/weights/v0.1/<net>.pth``, keys
``lin<k>.model.1.weight``) unless ``--lin`` names the file. Files load with ``torch.load(weights_only=True)``
(torch is imported here only) or as .safetensors / .npz.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from framedit_jax.eval import lpips
from framedit_jax.eval import weights_io


def _load_state_dict(path: str) -> dict[str, np.ndarray]:
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path} not found. {lpips.WEIGHTS_HINT}')
  return weights_io.read_state_dict(path, 'state_dict')


def lin_weights_path(net: str) -> str:
  """The lin-layer file shipped in the installed ``lpips`` package. Raises FileNotFoundError if not installed."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  spec = importlib.util.find_spec('lpips')
  if spec is None or spec.origin is None:
    raise FileNotFoundError('the `lpips` package is not installed (pip install lpips --no-deps gives its lin-layer '
                            'weights), or pass --lin=<lpips/weights/v0.1/NET.pth>.')
  return os.path.join(os.path.dirname(spec.origin), 'weights', 'v0.1', f'{net}.pth')


def convert_state_dicts(backbone: dict, lin: dict, net: str = 'vgg') -> dict[str, np.ndarray]:
  """torch state_dicts -> '/'-joined Flax paths (float32 numpy).

  Args:
    backbone: torchvision ``vgg16``/``alexnet`` state_dict (OIHW conv weights), ``classifier.*`` ignored.
    lin: lpips lin state_dict, ``lin<k>.model.1.weight`` of shape (1, C_k, 1, 1) (``lin<k>.model.0.weight`` also
      accepted, as saved with use_dropout=False).
    net: 'vgg' or 'alex'.

  Raises:
    ValueError: listing the missing and unexpected keys, or a shape mismatch.
  """
  lpips._check_net(net)  # pylint: disable=protected-access
  backbone = {k.removeprefix('module.'): v for k, v in backbone.items() if not k.startswith('classifier.')}
  out, used = {}, set()
  missing = []
  for layer in lpips.ARCH[net]['layers']:
    if layer[0] != 'conv':
      continue
    _, idx, ch, k, _, _ = layer
    for leaf, name in (('kernel', 'weight'), ('bias', 'bias')):
      key = f'features.{idx}.{name}'
      if key not in backbone:
        missing.append(key)
        continue
      v = np.asarray(backbone[key], np.float32)
      if leaf == 'kernel':
        if v.shape[0] != ch or v.shape[2:] != (k, k):
          raise ValueError(f'LPIPS backbone {key}: shape {v.shape}, expected ({ch}, C, {k}, {k}) for net={net!r}.')
        v = v.transpose(2, 3, 1, 0)  # OIHW -> HWIO
      out[f'net/features_{idx}/{leaf}'] = v
      used.add(key)
  for k, ch in enumerate(lpips.ARCH[net]['channels']):
    key = next((c for c in (f'lin{k}.model.1.weight', f'lin{k}.model.0.weight') if c in lin), None)
    if key is None:
      missing.append(f'lin{k}.model.1.weight')
      continue
    v = np.asarray(lin[key], np.float32)
    if v.shape != (1, ch, 1, 1):
      raise ValueError(f'LPIPS lin {key}: shape {v.shape}, expected (1, {ch}, 1, 1) for net={net!r}.')
    out[f'lin{k}/kernel'] = v.transpose(2, 3, 1, 0)
    used.add(key)
  unexpected = sorted(set(backbone) - used) + sorted(set(lin) - used)
  if missing or unexpected:
    raise ValueError(f'LPIPS conversion (net={net!r}): missing {missing}, unexpected {unexpected}.')
  return out


def convert_files(backbone_path: str, out_path: str, net: str = 'vgg', lin_path: str | None = None) -> str:
  """Reads both torch files, writes the .npz for ``lpips.load_lpips``, returns ``out_path``."""
  lin_path = lin_path or lin_weights_path(net)
  arrays = convert_state_dicts(_load_state_dict(backbone_path), _load_state_dict(lin_path), net)
  os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
  np.savez(out_path, __net__=np.array(net), **arrays)
  return out_path


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
  p.add_argument('--backbone', required=True, help='torchvision vgg16/alexnet ImageNet state_dict (.pth).')
  p.add_argument('--net', default='vgg', choices=sorted(lpips.ARCH))
  p.add_argument('--lin', default=None, help='lpips lin-layer file (default: from the installed lpips package).')
  p.add_argument('--out', required=True)
  a = p.parse_args(argv)
  print(convert_files(a.backbone, a.out, a.net, a.lin))


if __name__ == '__main__':
  main()

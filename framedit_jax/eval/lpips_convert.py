"""Converts the LPIPS torch weights (torchvision backbone + lpips lin layers) into one .npz for ``lpips.load_lpips``.

    python -m framedit_jax.eval.lpips_convert --backbone=vgg16-397923af.pth --net=vgg --out=lpips_vgg.npz

The backbone file is a torchvision ImageNet state_dict (``features.<i>.{weight,bias}``; ``classifier.*`` is
ignored). The lin layers are read from the installed ``lpips`` package (``lpips/weights/v0.1/<net>.pth``, keys
``lin<k>.model.1.weight``) unless ``--lin`` names the file. Files load with ``torch.load(weights_only=True)``
or as .safetensors / .npz (``framedit_jax.convert.weights``, torch imported only for torch files).
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from framedit_jax.convert import weights
from framedit_jax.eval import lpips


def _load_state_dict(path: str) -> dict[str, np.ndarray]:
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path} not found. {lpips.WEIGHTS_HINT}')
  return weights.read_state_dict(path, 'LPIPS weights')


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
    WeightsError (a ValueError): missing, unexpected and mis-shaped keys in one line (``weights.to_flax``).
  """
  lpips._check_net(net)  # pylint: disable=protected-access
  lin_keys = {f'lin{k}.model.{i}.weight' for k in range(len(lpips.ARCH[net]['channels'])) for i in (0, 1)}

  def rename(key):
    if key.startswith('classifier.'):
      return weights.SKIP
    parts = key.split('.')
    if key in lin_keys:
      return (parts[0], 'kernel'), 'kernel'
    if len(parts) == 3 and parts[0] == 'features' and parts[2] in ('weight', 'bias'):
      return ('net', f'features_{parts[1]}', 'kernel' if parts[2] == 'weight' else 'bias'), 'kernel'
    return None

  merged = {**weights.strip_prefixes(backbone), **lin}
  tree = weights.to_flax(merged, lpips_shapes(net), rename, f'LPIPS conversion (net={net!r})',
                         name_of_missing=_torch_name, hint=lpips.WEIGHTS_HINT)
  return {'/'.join(k): v for k, v in weights.flatten(tree).items()}


def lpips_shapes(net: str) -> dict[tuple[str, ...], tuple[int, ...]]:
  """`{param path: shape}` of `LPIPS(net)` (abstract init, nothing computed)."""
  import jax  # pylint: disable=g-import-not-at-top
  x = jax.ShapeDtypeStruct((1, 64, 64, 3), np.float32)
  return weights.flat_shapes(jax.eval_shape(lpips.LPIPS(net).init, jax.random.key(0), x, x)['params'])


def _torch_name(path: tuple[str, ...]) -> str:
  if path[0] == 'net':
    return f'features.{path[1].split("_")[1]}.{"weight" if path[2] == "kernel" else "bias"}'
  return f'{path[0]}.model.1.weight'


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

"""Parity of framedit_jax models with the official FrameDiT PyTorch modules (random weights, fp32, CPU).

    python tools/parity_official.py --official-src /tmp/official [--write-fixture]

For each case it builds the official torch module from `<official-src>/models/<file>.py` (imported at run time,
never copied into this repo), fills every trainable tensor with random values, runs the official forward in eval
mode, converts the state_dict with `framedit_jax.convert.official.convert_state_dict` and compares our forward.

The official files import `timm.models.vision_transformer.{Mlp, PatchEmbed}`; timm is not installed here (it
pulls torchvision), so a minimal stand-in with timm's public structure and state_dict names (`fc1`/`fc2`,
`proj`) is injected into `sys.modules`.

`--write-fixture` also writes tests/fixtures/models/official_parity.npz (weights stored as int8 codes with a
float32 scale/offset, so the float32 values are exactly reproducible; inputs; official outputs) used by
tests/test_models_parity.py, which needs neither torch nor the official code.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import types

import numpy as np

FIXTURE = os.path.join(os.path.dirname(__file__), '..', 'tests', 'fixtures', 'models', 'official_parity.npz')

TINY = dict(depth=2, hidden_size=32, num_heads=2, input_size=8, num_frames=4)
TINY_MATRIX = dict(qk_col_dim=8, v_col_dim=32, num_col_heads=4)

# Cases stored in the CI fixture (the tool checks all of CASES).
FIXTURE_CASES = ('latte', 'dit3d', 'framedit_g', 'framedit_g_softmax_u', 'framedit_h_concat', 'framedit_h_gated',
                 'framedit_h_img')

# case: (official file, class, our model name, our overrides, official extra kwargs, use_image_num)
CASES = {
    'latte': ('latte', 'Latte', 'Latte-S/2', dict(num_classes=5), dict(extras=2), 0),
    'dit3d': ('dit3d', 'DiT3D', 'DiT3D-S/2', dict(num_classes=0), dict(extras=1), 0),
    'framedit_g': ('framedit_g', 'FrameDiT_G', 'FrameDiTG-S/64-256/2', dict(num_classes=5, **TINY_MATRIX),
                   dict(extras=2), 0),
    'framedit_g_softmax_u': ('framedit_g', 'FrameDiT_G', 'FrameDiTG-S/64-256/2-softmax_u',
                             dict(num_classes=0, **TINY_MATRIX), dict(extras=1, u_type='softmax'), 0),
    'framedit_g_identity_u': ('framedit_g', 'FrameDiT_G', 'FrameDiTG-S/64-256/2',
                              dict(num_classes=0, qk_col_dim=16, v_col_dim=16, num_col_heads=4, u_type='identity'),
                              dict(extras=1, u_type='identity'), 0),
    'framedit_h_concat': ('framedit_h', 'FrameDiT_H', 'FrameDiTH-S/64-256/2-concat',
                          dict(num_classes=5, **TINY_MATRIX), dict(extras=2, fuse_mode='concat'), 0),
    'framedit_h_gated': ('framedit_h', 'FrameDiT_H', 'FrameDiTH-S/64-256/2-gated', dict(num_classes=0, **TINY_MATRIX),
                         dict(extras=1, fuse_mode='gated'), 0),
    'framedit_h_sum': ('framedit_h', 'FrameDiT_H', 'FrameDiTH-S/64-256/2-concat',
                       dict(num_classes=0, fuse_mode='sum', **TINY_MATRIX), dict(extras=1, fuse_mode='sum'), 0),
    'framedit_h_local': ('framedit_h', 'FrameDiT_H', 'FrameDiTH-S/64-256/2-concat',
                         dict(num_classes=0, fuse_mode='local', **TINY_MATRIX), dict(extras=1, fuse_mode='local'), 0),
    'framedit_h_img': ('framedit_h_img', 'FrameDiT_H_IMG', 'FrameDiTHIMG-S/64-256/2-concat',
                       dict(num_classes=0, **TINY_MATRIX), dict(extras=1, fuse_mode='concat'), 2),
    'latte_img': ('latte_img', 'Latte', 'LatteIMG-S/2', dict(num_classes=0), dict(extras=1), 2),
}


def install_timm_stub() -> None:
  """Registers `timm.models.vision_transformer` with Mlp and PatchEmbed (timm's public structure and names)."""
  import torch
  from torch import nn

  class Mlp(nn.Module):
    """fc1 -> act -> drop -> fc2 -> drop."""

    def __init__(self, in_features, hidden_features=None, out_features=None, act_layer=nn.GELU, drop=0.0,
                 bias=True, **_):
      super().__init__()
      hidden_features = hidden_features or in_features
      out_features = out_features or in_features
      self.fc1 = nn.Linear(in_features, hidden_features, bias=bias)
      self.act = act_layer()
      self.drop1 = nn.Dropout(drop)
      self.fc2 = nn.Linear(hidden_features, out_features, bias=bias)
      self.drop2 = nn.Dropout(drop)

    def forward(self, x):
      return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))

  class PatchEmbed(nn.Module):
    """Conv2d(kernel = stride = patch) then flatten to (B, N, D)."""

    def __init__(self, img_size=224, patch_size=16, in_chans=3, embed_dim=768, bias=True, **_):
      super().__init__()
      self.img_size = (img_size, img_size)
      self.patch_size = (patch_size, patch_size)
      self.grid_size = (img_size // patch_size, img_size // patch_size)
      self.num_patches = self.grid_size[0] * self.grid_size[1]
      self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size, bias=bias)

    def forward(self, x):
      return self.proj(x).flatten(2).transpose(1, 2)

  vit = types.ModuleType('timm.models.vision_transformer')
  vit.Mlp, vit.PatchEmbed = Mlp, PatchEmbed
  timm = types.ModuleType('timm')
  models = types.ModuleType('timm.models')
  timm.models, models.vision_transformer = models, vit
  sys.modules.update({'timm': timm, 'timm.models': models, 'timm.models.vision_transformer': vit})
  del torch


def load_official(src: str, file: str):
  path = os.path.join(src, 'models', f'{file}.py')
  if not os.path.exists(path):
    raise FileNotFoundError(f'--official-src: {path} not found; pass the FrameDiT checkout root.')
  spec = importlib.util.spec_from_file_location(f'official_{file}', path)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod


def random_codes(name: str, shape: tuple[int, ...], rng: np.random.Generator):
  """Small int8 codes, scale, offset such that value = codes * scale + offset (float32, exactly reproducible)."""
  codes = rng.integers(-7, 8, size=shape, dtype=np.int8)  # 15 levels: compresses to ~half a byte
  leaf = name.rsplit('.', 1)[-1]
  fan = shape[0] + (int(np.prod(shape[1:])) if len(shape) > 1 else shape[0])
  std = np.sqrt(2.0 / fan) if len(shape) > 1 else 0.1
  offset = 0.0
  if 'norm_' in name and leaf == 'weight':
    offset = 1.0
  elif leaf in ('gamma_local', 'gamma_global'):
    offset, std = 0.5, 0.1
  elif leaf == 'u_temperature':
    offset, std = 1.0, 0.2
  elif leaf == 'alpha':
    std = 1.0
  scale = np.float32(std * np.sqrt(3.0) / 7.0)
  return codes, scale, np.float32(offset)


def decode(codes, scale, offset) -> np.ndarray:
  return codes.astype(np.float32) * np.float32(scale) + np.float32(offset)


def run_case(src: str, case: str, seed: int = 0):
  import torch
  file, cls, name, ours, official_kw, use_image_num = CASES[case]
  mod = load_official(src, file)
  tiny = dict(TINY)
  kw = dict(input_size=tiny['input_size'], patch_size=2, in_channels=4, hidden_size=tiny['hidden_size'],
            depth=tiny['depth'], num_frames=tiny['num_frames'], num_classes=max(ours.get('num_classes', 0), 1),
            learn_sigma=True, class_dropout_prob=0.1, **official_kw)
  if file.startswith('framedit'):
    kw.update(num_row_heads=tiny['num_heads'], qk_col_dim=ours['qk_col_dim'], v_col_dim=ours['v_col_dim'],
              num_col_heads=ours['num_col_heads'])
  else:
    kw.update(num_heads=tiny['num_heads'])
  torch.manual_seed(seed)
  model = getattr(mod, cls)(**kw).eval()
  rng = np.random.default_rng(seed)
  coded, raw = {}, {}
  with torch.no_grad():
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    for key, tensor in model.state_dict().items():
      if key in trainable:
        codes, scale, offset = random_codes(key, tuple(tensor.shape), rng)
        tensor.copy_(torch.from_numpy(decode(codes, scale, offset)))
        coded[key] = (codes, scale, offset)
      else:
        raw[key] = tensor.detach().cpu().numpy().astype(np.float32)
  b, frames = 2, tiny['num_frames'] + use_image_num
  x_codes = np.clip(np.round(rng.standard_normal((b, frames, tiny['input_size'], tiny['input_size'], 4)) * 32),
                    -127, 127).astype(np.int8)  # (B, T, H, W, C); x = codes / 32 exactly in float32
  x = np.transpose(x_codes.astype(np.float32) / np.float32(32.0), (0, 1, 4, 2, 3))  # official (B, T, C, H, W)
  t = np.array([17, 942], np.int64)
  y = np.array([1, 4], np.int64) if ours.get('num_classes', 0) > 0 else None
  with torch.no_grad():
    fwd = dict(use_image_num=use_image_num) if use_image_num else {}
    out = model(torch.from_numpy(x), torch.from_numpy(t), y=None if y is None else torch.from_numpy(y), **fwd)
  out = np.transpose(out.numpy(), (0, 1, 3, 4, 2))  # (B, T, H, W, C)
  overrides = dict(tiny, **ours, use_image_num=use_image_num)
  return dict(name=name, overrides=overrides, coded=coded, raw=raw, x=np.transpose(x, (0, 1, 3, 4, 2)),
              x_codes=x_codes, t=t, y=y, out=out)


def ours_forward(result) -> np.ndarray:
  import jax.numpy as jnp
  from framedit_jax.convert.official import convert_state_dict
  from framedit_jax.models import get_model
  sd = {k: decode(*v) for k, v in result['coded'].items()}
  sd.update(result['raw'])
  params = convert_state_dict(sd, result['name'], **result['overrides'])
  module = get_model(result['name'], **result['overrides'])
  y = None if result['y'] is None else jnp.asarray(result['y'])
  return np.asarray(module.apply({'params': params}, jnp.asarray(result['x']), jnp.asarray(result['t']), y))


def pack_nibbles(codes: np.ndarray) -> np.ndarray:
  """int8 codes in [-7, 7] -> uint8, two codes per byte (low nibble first), flattened."""
  u = (codes.reshape(-1).astype(np.int16) + 8).astype(np.uint8)
  if u.size % 2:
    u = np.concatenate([u, np.zeros(1, np.uint8)])
  return u[0::2] | (u[1::2] << 4)


def write_fixture(results: dict, path: str, cases: tuple[str, ...] = FIXTURE_CASES) -> None:
  """Stores weights as packed 4-bit codes + (scale, offset), x as int8 codes * 1/32, t, y and the official output."""
  arrays, meta = {}, {}
  for case in cases:
    if case not in results:
      continue
    r = results[case]
    meta[case] = dict(name=r['name'], overrides=r['overrides'],
                      coded={k: list(v[0].shape) for k, v in sorted(r['coded'].items())}, raw=sorted(r['raw']),
                      conditional=r['y'] is not None)
    for key, (codes, scale, offset) in r['coded'].items():
      arrays[f'{case}|q|{key}'] = pack_nibbles(codes)
      arrays[f'{case}|s|{key}'] = np.array([scale, offset], np.float32)
    for key, value in r['raw'].items():
      arrays[f'{case}|r|{key}'] = value
    arrays[f'{case}|xq'] = r['x_codes']
    arrays[f'{case}|t'] = r['t'].astype(np.int32)
    if r['y'] is not None:
      arrays[f'{case}|y'] = r['y'].astype(np.int32)
    arrays[f'{case}|out'] = r['out']
  arrays['__meta__'] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  np.savez_compressed(path, **arrays)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--official-src', required=True, help='root of the official FrameDiT checkout')
  parser.add_argument('--cases', default=','.join(CASES), help='comma-separated subset of ' + ','.join(CASES))
  parser.add_argument('--tol', type=float, default=1e-5, help='max abs diff allowed (fp32)')
  parser.add_argument('--write-fixture', action='store_true', help=f'write {os.path.normpath(FIXTURE)}')
  args = parser.parse_args(argv)
  install_timm_stub()
  results, worst = {}, 0.0
  for case in args.cases.split(','):
    if case not in CASES:
      parser.error(f'unknown case {case!r}; choose from {", ".join(CASES)}')
    r = run_case(args.official_src, case)
    diff = float(np.abs(ours_forward(r) - r['out']).max())
    worst = max(worst, diff)
    print(f'{case:24s} {r["name"]:36s} out {tuple(r["out"].shape)} |out|max {np.abs(r["out"]).max():7.3f} '
          f'max abs diff {diff:.2e} {"OK" if diff <= args.tol else "FAIL"}')
    results[case] = r
  if args.write_fixture:
    write_fixture(results, FIXTURE)
    print(f'wrote {os.path.normpath(FIXTURE)} ({os.path.getsize(FIXTURE) / 1024:.0f} KiB)')
  return 0 if worst <= args.tol else 1


if __name__ == '__main__':
  sys.exit(main())

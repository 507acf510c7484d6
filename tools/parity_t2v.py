"""Parity of the Flax text-to-video models with the official FrameDiT PyTorch modules (random weights, fp32, CPU).

    python tools/parity_t2v.py --official-src /work/ref/FrameDiT [--write-fixture]

Builds `LatteT2V` (`models/latte_t2v.py`) and `FrameDiT_H_T2V` (`models/framedit_h_t2v.py`) at a tiny size from
the official files (imported at run time, never copied here; they need diffusers), fills every parameter with
exactly representable random values, runs the official forward with a partly masked caption, converts the
state_dict with `framedit_jax.convert.t2v.convert_t2v_state_dict` and compares. `--write-fixture` writes
tests/fixtures/models/t2v_parity.npz (weights as packed 4-bit codes + scale/offset, inputs, official outputs),
checked by tests/test_models_t2v_parity.py without torch or the official code.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from parity_official import decode, load_official, pack_nibbles, random_codes  # pylint: disable=g-import-not-at-top

FIXTURE = os.path.join(os.path.dirname(__file__), '..', 'tests', 'fixtures', 'models', 't2v_parity.npz')

# Tiny Latte-1-like config: D = 2 heads x 16, 2 + 2 blocks, 8x8 latents (N = 16 tokens), 4 frames, 24-d text.
TINY = dict(num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=8, num_layers=2,
            cross_attention_dim=32, attention_bias=True, sample_size=8, patch_size=2, norm_eps=1e-6,
            caption_channels=24, video_length=4)
_OFFICIAL_FIXED = dict(activation_fn='gelu-approximate', num_embeds_ada_norm=1000, norm_type='ada_norm_single',
                       norm_elementwise_affine=False)
# FrameDiT-H-T2V: N = 16 tokens, 8 column heads, r_qk = 8 x 1, r_v = 8 x 2, pure-softmax U, col_row bias.
TINY_MATRIX = dict(num_col_attn_heads=8, qk_col_attn_head_dim=1, v_col_attn_head_dim=2)
CASES = ('latte_t2v', 'framedit_h_t2v')


def _official_model(src: str, case: str):
  import torch  # pylint: disable=g-import-not-at-top
  mod = load_official(src, case)
  grid_fn = mod.get_1d_sincos_pos_embed_from_grid  # newer diffusers return a tensor; the official code wants numpy
  mod.get_1d_sincos_pos_embed_from_grid = lambda d, pos: np.asarray(grid_fn(d, pos))
  if case == 'latte_t2v':
    return mod.LatteT2V(**TINY, **_OFFICIAL_FIXED)
  kw = {k: v for k, v in TINY.items() if k not in ('num_attention_heads', 'attention_head_dim')}
  del torch
  return mod.FrameDiT_H_T2V(col_dim=16, num_row_attn_heads=2, row_attn_head_dim=16, fuse_mode='concat',
                            u_type='pure-softmax', attention_mode='math', use_bias=True, bias_type='col_row',
                            attention_type='default', **TINY_MATRIX, **kw, **_OFFICIAL_FIXED)


def run_case(src: str, case: str, seed: int = 0) -> dict:
  import torch  # pylint: disable=g-import-not-at-top
  torch.manual_seed(seed)
  model = _official_model(src, case).eval()
  rng = np.random.default_rng(seed)
  coded, raw = {}, {}
  with torch.no_grad():
    trainable = {n for n, p in model.named_parameters()}
    for key, tensor in model.state_dict().items():
      if key in trainable:
        codes, scale, offset = random_codes(key, tuple(tensor.shape), rng)
        tensor.copy_(torch.from_numpy(decode(codes, scale, offset)))
        coded[key] = (codes, scale, offset)
      else:
        raw[key] = tensor.detach().cpu().numpy().astype(np.float32)
  b, f, s = 2, TINY['video_length'], TINY['sample_size']
  x_codes = np.clip(np.round(rng.standard_normal((b, f, s, s, 4)) * 32), -127, 127).astype(np.int8)
  x = x_codes.astype(np.float32) / np.float32(32.0)  # (B, F, H, W, C)
  y_codes = np.clip(np.round(rng.standard_normal((b, 6, TINY['caption_channels'])) * 32), -127, 127).astype(np.int8)
  y = y_codes.astype(np.float32) / np.float32(32.0)
  mask = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]], np.int32)
  t = np.array([17, 942], np.int64)
  with torch.no_grad():
    out = model(torch.from_numpy(np.transpose(x, (0, 4, 1, 2, 3))), timestep=torch.from_numpy(t),
                encoder_hidden_states=torch.from_numpy(y), encoder_attention_mask=torch.from_numpy(mask),
                return_dict=False)[0]
  out = np.transpose(out.numpy(), (0, 2, 3, 4, 1))  # official (B, C, F, H, W) -> (B, F, H, W, C)
  return dict(coded=coded, raw=raw, x_codes=x_codes, y_codes=y_codes, mask=mask, t=t, out=out)


def build_ours(case: str):
  """Our module for a case (tiny config)."""
  from framedit_jax.models import t2v  # pylint: disable=g-import-not-at-top
  if case == 'latte_t2v':
    return t2v.LatteT2V(**TINY)
  return t2v.FrameDiTHT2V(**TINY, num_col_heads=8, qk_col_dim=8, v_col_dim=16, num_patches=16)


def ours_forward(case: str, r: dict) -> np.ndarray:
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from framedit_jax.convert.t2v import convert_t2v_state_dict, sample_inputs  # pylint: disable=g-import-not-at-top
  module = build_ours(case)
  sd = {k: decode(*v) for k, v in r['coded'].items()}
  sd.update(r['raw'])
  params = convert_t2v_state_dict(sd, module, sample_inputs(module))
  x = jnp.asarray(r['x_codes'].astype(np.float32) / np.float32(32.0))
  y = jnp.asarray(r['y_codes'].astype(np.float32) / np.float32(32.0))
  return np.asarray(module.apply({'params': params}, x, jnp.asarray(r['t']), y, jnp.asarray(r['mask'])))


def write_fixture(results: dict, path: str) -> None:
  arrays, meta = {}, {}
  for case, r in results.items():
    meta[case] = dict(coded={k: list(v[0].shape) for k, v in sorted(r['coded'].items())}, raw=sorted(r['raw']))
    for key, (codes, scale, offset) in r['coded'].items():
      arrays[f'{case}|q|{key}'] = pack_nibbles(codes)
      arrays[f'{case}|s|{key}'] = np.array([scale, offset], np.float32)
    for key, value in r['raw'].items():
      arrays[f'{case}|r|{key}'] = value
    for name in ('x_codes', 'y_codes', 'mask', 'out'):
      arrays[f'{case}|{name}'] = r[name]
    arrays[f'{case}|t'] = r['t'].astype(np.int32)
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
  results, worst = {}, 0.0
  for case in args.cases.split(','):
    if case not in CASES:
      parser.error(f'unknown case {case!r}; choose from {", ".join(CASES)}')
    r = run_case(args.official_src, case)
    diff = float(np.abs(ours_forward(case, r) - r['out']).max())
    worst = max(worst, diff)
    print(f'{case:16s} out {tuple(r["out"].shape)} |out|max {np.abs(r["out"]).max():7.3f} max abs diff {diff:.2e} '
          f'{"OK" if diff <= args.tol else "FAIL"}')
    results[case] = r
  if args.write_fixture:
    write_fixture(results, FIXTURE)
    print(f'wrote {os.path.normpath(FIXTURE)} ({os.path.getsize(FIXTURE) / 1024:.0f} KiB)')
  return 0 if worst <= args.tol else 1


if __name__ == '__main__':
  sys.exit(main())

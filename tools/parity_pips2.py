"""Parity of framedit_jax.eval.pips2 (PIPs++) and the FVMD motion features with the official FrameDiT code.

    python tools/parity_pips2.py --official-src /work/ref/FrameDiT [--write-fixture]

Imports `<official-src>/tools/metrics/models/{pips2,motion_extractor}.py` at run time (never copied here),
fills the official `Pips` with hash-generated weights (tests/_hash_weights.py: regenerable from the key names)
and runs, on hashed inputs:

* `Pips.forward` (B=1, S=8, 128x128, 6 points, iters=5, beautify) -> all iteration outputs;
* `MotionExtractor.forward` (built without its hub download or torch.compile; resolution 128, 16-frame
  segments at stride 15, a 5x5 grid, iters=2) on a 31-frame 96x112 clip -> tracks and the FVMD features.

`--write-fixture` writes tests/fixtures/eval/pips2_parity.npz (outputs only), checked by
tests/test_eval_pips2.py without torch or the official code.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import types

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
sys.path[:0] = [ROOT, os.path.join(ROOT, 'tests')]
from _hash_weights import fan_in_std, hash_codes, hash_tensor  # pylint: disable=g-import-not-at-top,wrong-import-position

FIXTURE = os.path.join(ROOT, 'tests', 'fixtures', 'eval', 'pips2_parity.npz')
TRACK = dict(b=1, s=8, h=128, w=128, iters=5)
E2E = dict(t=31, h=96, w=112, resolution=128, num_points=25, iters=2)


def load_official(src: str):
  """(pips2 module, motion_extractor module) from the official checkout, in a stand-in package."""
  d = os.path.join(src, 'tools', 'metrics', 'models')
  if not os.path.exists(os.path.join(d, 'pips2.py')):
    raise FileNotFoundError(f'--official-src: {d}/pips2.py not found; pass the FrameDiT checkout root.')
  pkg = types.ModuleType('official_fvmd')
  pkg.__path__ = [d]
  sys.modules['official_fvmd'] = pkg
  mods = []
  for name in ('pips2', 'motion_extractor'):
    spec = importlib.util.spec_from_file_location(f'official_fvmd.{name}', os.path.join(d, f'{name}.py'))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    mods.append(mod)
  return mods


def hashed_weight(key: str, shape) -> np.ndarray:
  """The value every test and tool uses for the official PIPs++ parameter ``key``."""
  if key.endswith('bias'):
    return hash_tensor(key, shape, 0.05)
  std = fan_in_std(shape)
  if key.startswith('delta_block.dense'):
    std *= 0.02  # keeps the random tracker's updates at a few pixels
  elif key.startswith('delta_block.basicblock_list') and key.endswith('conv2.conv.weight'):
    std *= 0.5
  return hash_tensor(key, shape, std)


def state_dict_shapes(pips2_mod) -> dict:
  return {k: tuple(v.shape) for k, v in pips2_mod.Pips().state_dict().items()}


def hashed_state_dict(shapes: dict) -> dict:
  return {k: hashed_weight(k, s) for k, s in shapes.items()}


def track_inputs() -> tuple[np.ndarray, np.ndarray]:
  """(B, S, H, W, 3) frames in [-1, 1] (a hashed static pattern translated 2 px/frame) and (B, S, N, 2) queries."""
  b, s, h, w = TRACK['b'], TRACK['s'], TRACK['h'], TRACK['w']
  base = hash_codes('pips2.frame', (h + 2 * s, w + 2 * s, 3), levels=255).astype(np.float32) / np.float32(127)
  frames = np.stack([base[t:t + h, 2 * t:2 * t + w] for t in range(s)])[None].repeat(b, 0)
  q = np.array([[20, 30], [64, 64], [100, 40], [5, 120], [77.5, 12.25], [120, 100]], np.float32)
  return frames.astype(np.float32), np.broadcast_to(q, (b, s) + q.shape).copy()


def e2e_video() -> np.ndarray:
  """(1, T, H, W, 3) uint8 frames (a hashed pattern moving 1 px down and 2 px right per frame)."""
  t, h, w = E2E['t'], E2E['h'], E2E['w']
  base = (hash_codes('fvmd.frame', (h + t, w + 2 * t, 3), levels=255) + 127).astype(np.uint8)
  return np.stack([base[t - i:t - i + h, 2 * (t - i):2 * (t - i) + w] for i in range(t)])[None]


def official(src: str):
  import torch
  pips2_mod, me_mod = load_official(src)
  model = pips2_mod.Pips().eval()
  sd = hashed_state_dict(state_dict_shapes(pips2_mod))
  model.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
  frames, queries = track_inputs()
  with torch.no_grad():
    preds = model(torch.from_numpy(queries), torch.from_numpy(frames).permute(0, 1, 4, 2, 3),
                  iters=TRACK['iters'], beautify=True)
  tracks = np.stack([p.numpy() for p in preds])
  ex = me_mod.MotionExtractor.__new__(me_mod.MotionExtractor)
  torch.nn.Module.__init__(ex)
  ex.pips, ex.resolution, ex.segment_length = model, E2E['resolution'], 16
  ex.num_points, ex.num_iters = E2E['num_points'], E2E['iters']
  ex.register_buffer('coords', ex._get_coords(), persistent=False)  # pylint: disable=protected-access
  video = torch.from_numpy(e2e_video()).permute(0, 1, 4, 2, 3).float() / 255.0 * 2 - 1  # FVMD input
  with torch.no_grad():
    feats = ex(video).numpy()
    seg_tracks = []
    small = torch.nn.functional.interpolate(video[0], size=(E2E['resolution'],) * 2, mode='bilinear',
                                            align_corners=False)[None]
    for start in (0, 15):
      seg_tracks.append(ex._track_keypoints(small[:, start:start + 16]).numpy()[0])  # pylint: disable=protected-access
  return dict(tracks=tracks.astype(np.float32), e2e_tracks=np.stack(seg_tracks).astype(np.float32),
              e2e_features=feats.astype(np.float32))


def ours(shapes: dict):
  import jax.numpy as jnp
  from framedit_jax.eval import motion_extractor, pips2, pips2_convert
  params = pips2_convert.convert_state_dict(hashed_state_dict(shapes))
  frames, queries = track_inputs()
  tracks = np.asarray(pips2.track(params, jnp.asarray(queries), jnp.asarray(frames), iters=TRACK['iters']))
  ex = motion_extractor.MotionFeatureExtractor(params=params, resolution=E2E['resolution'],
                                               num_points=E2E['num_points'], num_iters=E2E['iters'])
  video = e2e_video()
  return dict(tracks=tracks, e2e_tracks=ex.tracks(video[0]), e2e_features=ex(video))


def main():
  p = argparse.ArgumentParser()
  p.add_argument('--official-src', required=True)
  p.add_argument('--write-fixture', action='store_true')
  a = p.parse_args()
  pips2_mod, _ = load_official(a.official_src)
  shapes = state_dict_shapes(pips2_mod)
  ref = official(a.official_src)
  got = ours(shapes)
  tolerance = dict(tracks=1e-4, e2e_tracks=1e-4, e2e_features=1e-6)
  for k in ref:
    err = float(np.abs(ref[k] - got[k]).max())
    print(f'{k}: shape {ref[k].shape}  max|ref| {np.abs(ref[k]).max():.3f}  max|diff| {err:.2e}')
    assert err <= tolerance[k], (k, err)
  d = ref['tracks'][-1] - ref['tracks'][0][:, :1]
  print('official track displacement from the query (px):', np.abs(d).max(axis=(0, 2, 3)))
  if a.write_fixture:
    os.makedirs(os.path.dirname(FIXTURE), exist_ok=True)
    keys = np.frombuffer(json.dumps(shapes).encode(), np.uint8)
    np.savez_compressed(FIXTURE, __shapes__=keys, **ref)
    print('wrote', FIXTURE, os.path.getsize(FIXTURE), 'bytes')


if __name__ == '__main__':
  main()

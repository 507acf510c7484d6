"""PIPs++ (JAX) and the FVMD features against the official FrameDiT PyTorch code (fixture: tools/parity_pips2.py).

The official `Pips` ran with hash-generated weights (regenerated here from the key names), so the fixture holds
only its outputs: all iterations of a 6-point track and the end-to-end `MotionExtractor` tracks and features.
"""

import importlib.util
import json
import os

import jax.numpy as jnp
import numpy as np
import pytest
import torch

from framedit_jax.eval import motion_extractor, pips2, pips2_convert, resize

HERE = os.path.dirname(__file__)
_spec = importlib.util.spec_from_file_location('parity_pips2', os.path.join(HERE, '..', 'tools', 'parity_pips2.py'))
tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tool)  # the official code is imported only inside its `official`


@pytest.fixture(scope='module')
def fixture():
  data = np.load(os.path.join(HERE, 'fixtures', 'eval', 'pips2_parity.npz'))
  shapes = json.loads(bytes(data['__shapes__']).decode())
  return data, shapes


@pytest.fixture(scope='module')
def params(fixture):
  return pips2_convert.convert_state_dict(tool.hashed_state_dict(fixture[1]))


def test_track_matches_official(fixture, params):
  data, _ = fixture
  frames, queries = tool.track_inputs()
  got = np.asarray(pips2.track(params, jnp.asarray(queries), jnp.asarray(frames), iters=tool.TRACK['iters']))
  ref = data['tracks']  # (iters + 1, B, S, N, 2)
  assert np.abs(ref[-1] - ref[0][:, :1]).max() > 1.0  # the random tracker moves points by pixels
  np.testing.assert_allclose(got, ref, rtol=0, atol=1e-4)
  np.testing.assert_array_equal(got[-1][:, 0], queries[:, 0])  # frame 0 locked to the query


def test_fvmd_features_match_official_motion_extractor(fixture, params):
  data, _ = fixture
  ex = motion_extractor.MotionFeatureExtractor(params=params, resolution=tool.E2E['resolution'],
                                               num_points=tool.E2E['num_points'], num_iters=tool.E2E['iters'])
  video = tool.e2e_video()  # (1, 31, 96, 112, 3): two segments (frames 0-15, 15-30), resized to 128
  tracks = ex.tracks(video[0])
  np.testing.assert_allclose(tracks, data['e2e_tracks'], rtol=0, atol=1e-4)
  feats = ex(video)
  assert feats.shape == data['e2e_features'].shape and np.abs(feats).max() > 1.0
  np.testing.assert_allclose(feats, data['e2e_features'], rtol=0, atol=1e-6)


def test_resize_matches_torch_interpolate():
  x = np.arange(2 * 7 * 9 * 3, dtype=np.float32).reshape(2, 7, 9, 3) ** 1.5 / 50.0
  for hw in ((16, 12), (4, 5), (7, 9)):
    ref = torch.nn.functional.interpolate(torch.from_numpy(x).permute(0, 3, 1, 2), size=hw, mode='bilinear',
                                          align_corners=False).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(np.asarray(resize.resize_bilinear(jnp.asarray(x), *hw)), ref, atol=1e-4)


def test_converter_and_loader_errors(fixture, tmp_path):
  sd = tool.hashed_state_dict(fixture[1])
  del sd['fnet.layer2.0.downsample.0.bias']
  sd['delta_block.extra.weight'] = np.zeros(2, np.float32)
  with pytest.raises(ValueError, match=r'1 missing \[fnet/layer2_0/downsample_0/bias\]; 1 unexpected '
                                       r'\[delta_block\.extra\.weight\]'):
    pips2_convert.convert_state_dict(sd)
  with pytest.raises(ValueError, match='multiples of 8 and >= 128'):
    pips2.track({}, np.zeros((1, 8, 4, 2)), np.zeros((1, 8, 64, 64, 3)))
  with pytest.raises(FileNotFoundError, match='pips2_weights.pth'):
    motion_extractor.MotionFeatureExtractor(str(tmp_path / 'none.pth'))
  # a real checkpoint layout: {'model_state_dict': ...} saved by torch, loaded with weights_only=True
  full = {k: torch.from_numpy(v) for k, v in tool.hashed_state_dict(fixture[1]).items()}
  torch.save({'model_state_dict': full, 'optimizer_state_dict': {}}, tmp_path / 'pips2.pth')
  loaded = pips2_convert.load_pips2(str(tmp_path / 'pips2.pth'))
  np.testing.assert_array_equal(loaded['delta_block']['dense']['kernel'], sd['delta_block.dense.weight'].T)

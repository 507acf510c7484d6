"""Every launch script run as a user would (subprocess), each checked against a second computation.

  * convert_checkpoint.py: official weights (fixture) -> orbax dir -> the official PyTorch output;
  * sample.py: mp4s equal the in-process `Experiment.generate` of the same checkpoint and seed;
  * eval.py: FVD(real, real) = 0 for identical real halves, FVD(samples, real) > 0 for other videos, the same
    value in the run directory's TensorBoard (<workdir>/eval);
  * prepare_data.py: the report equals the built dataset's own metadata;
  * prepare_latents.py: the cache equals `build_latent_cache` in-process with the same VAE.
"""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import _train_utils as tu

sys.path.insert(0, tu.REPO)
sys.path.insert(0, os.path.join(os.path.dirname(__file__), 'fixtures', 'data'))
import synthetic as S  # pylint: disable=g-import-not-at-top,wrong-import-position


def _launch(script, *args, timeout=600):
  r = subprocess.run([sys.executable, os.path.join(tu.REPO, 'launch', script), *args], env=tu.env(),
                     capture_output=True, text=True, timeout=timeout, cwd=tu.REPO)
  assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-3000:])
  return r


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp('tfds'))


@pytest.fixture(scope='module')
def raw_videos(tmp_path_factory):
  """A tiny `video_folder` dataset: 2 synthetic videos of 48 frames (the builders' minimum)."""
  root = tmp_path_factory.mktemp('raw')
  for v in range(2):
    S.write_video(str(root / f'v{v}.mp4'), v, 48)
  return str(root)


def test_convert_checkpoint_cli(tmp_path):
  from safetensors.numpy import save_file
  from framedit_jax.convert import checkpoint_io
  from framedit_jax.models import get_model
  import test_models_parity as P
  data = np.load(P.FIXTURE)
  meta = json.loads(bytes(data['__meta__']).decode())['framedit_g']
  save_file(P._state_dict(data, 'framedit_g', meta), str(tmp_path / 'w.safetensors'))  # pylint: disable=protected-access
  arch = {k: v for k, v in meta['overrides'].items() if k not in ('input_size', 'num_frames', 'num_classes')}
  _launch('convert_checkpoint.py', f'--src={tmp_path / "w.safetensors"}', f'--model={meta["name"]}',
          f'--out={tmp_path / "jax"}', *[f'--override={k}={v}' for k, v in arch.items()])
  params, saved = checkpoint_io.load_params(str(tmp_path / 'jax'))
  module = get_model(saved['model_name'], **saved['overrides'])
  x = jnp.asarray(data['framedit_g|xq'].astype(np.float32) / np.float32(32.0))
  out = module.apply({'params': params}, x, jnp.asarray(data['framedit_g|t']), jnp.asarray(data['framedit_g|y']))
  np.testing.assert_allclose(out, data['framedit_g|out'], rtol=0, atol=1e-5)


def _read_mp4(path):
  import imageio.v3 as iio
  return iio.imread(path, plugin='pyav').astype(np.float32) / 127.5 - 1.0


def test_sample_cli_matches_in_process_generate(tmp_path, data_dir):
  from framedit_jax.train import checkpoint as ckpt_lib
  from framedit_jax.train.experiment import Experiment
  overrides = {'data.image_size': 32, 'sample.num_steps': 2}
  config = tu.tiny_config(data_dir, **overrides)
  exp = Experiment(config, devices=jax.devices()[:1])
  state, _ = exp.create_state()
  state = state.replace(ema_params=jax.tree.map(lambda p: p + 0.02, state.ema_params))  # not the zero-init output
  work = tmp_path / 'w'
  ckpt = ckpt_lib.Checkpointer(ckpt_lib.checkpoint_dir(str(work)), async_save=False)
  ckpt.save(1, state, {}, config)
  ckpt.close()
  args = [f'--config={tu.REPO}/configs/demo.py', f'--workdir={work}', f'--out_dir={tmp_path / "s"}',
          '--num_samples=2', '--batch_size=2', '--seed=3', '--save_npy', f'--config.data.data_dir={data_dir}']
  args += [f'--config.{k}={v}' for k, v in {**tu.TINY_OVERRIDES, **overrides}.items()]
  _launch('sample.py', *args)
  from framedit_jax.train.generate import to_uint8
  got = np.stack([np.load(tmp_path / 's' / f'00000{i}.npy') for i in range(2)])
  mp4 = np.stack([_read_mp4(str(tmp_path / 's' / f'00000{i}.mp4')) for i in range(2)])
  assert os.path.isfile(tmp_path / 's' / 'grid.mp4') and mp4.shape == got.shape == (2, 4, 32, 32, 3)
  want = to_uint8(exp.generate(state.ema_params, jax.random.fold_in(jax.random.PRNGKey(3), 0), 2))
  assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
  assert np.abs(got.astype(int) - want.astype(int)).mean() < 0.05
  # The PNG strip is lossless: row i, column j is frame j of video i (1-pixel white gaps).
  import imageio.v3 as iio
  strip = iio.imread(tmp_path / 's' / 'strip.png')
  assert strip.shape == (2 * 33 - 1, 4 * 33 - 1, 3)
  for i in range(2):
    for j in range(4):
      np.testing.assert_array_equal(strip[i * 33:i * 33 + 32, j * 33:j * 33 + 32], got[i, j])
  assert (strip[32] == 255).all() and (strip[:, 32] == 255).all()


def test_eval_cli_real_baseline_zero_and_fvd_positive(tmp_path):
  for i in range(4):
    S.write_video(str(tmp_path / 'real' / f'r{i}.mp4'), 1, 16)  # 4 copies of one 16-frame video
  S.write_video(str(tmp_path / 'fake' / 'a.mp4'), 2, 16)
  S.write_video(str(tmp_path / 'fake' / 'b.mp4'), 3, 16)
  work = tmp_path / 'run'  # a training-run directory: eval's scalars go to its TensorBoard under eval/
  _launch('eval.py', f'--samples={tmp_path / "fake"}', f'--real={tmp_path / "real"}', '--num_videos=2',
          '--real_stride=1', '--batch_size=4', f'--out_json={tmp_path / "eval.json"}', f'--workdir={work}',
          '--step=7')
  with open(tmp_path / 'eval.json') as f:
    out = json.load(f)
  assert out['num_videos'] == 2
  assert abs(out['fvd_real_vs_real']) < 1e-2  # identical real halves: the Frechet distance is exactly 0
  assert out['fvd'] > 1.0  # other videos are far away
  from tensorboard.backend.event_processing import event_accumulator
  from tensorboard.util import tensor_util
  acc = event_accumulator.EventAccumulator(str(work / 'eval'), size_guidance={event_accumulator.TENSORS: 0})
  acc.Reload()
  logged = [(e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in acc.Tensors('eval/fvd2_16f')]
  assert logged == [(7, pytest.approx(out['fvd'], rel=1e-6))]
  assert os.listdir(work) == ['eval']


def test_prepare_data_cli_reports_the_built_dataset(tmp_path, raw_videos):
  import ml_collections
  from framedit_jax.data import pipeline
  data_dir = str(tmp_path / 'tfds')
  r = _launch('prepare_data.py', '--dataset=video_folder', f'--manual_dir={raw_videos}', f'--data_dir={data_dir}')
  report = json.loads(r.stdout[r.stdout.index('{'):])
  config = ml_collections.ConfigDict({'data': {'dataset': 'video_folder', 'data_dir': data_dir,
                                               'manual_dir': None, 'builder_config': None}})
  builder = pipeline.get_builder(config, build=False)
  assert builder.is_prepared()
  assert report['examples'] == {k: v.num_examples for k, v in builder.info.splits.items()} == {'train': 2}
  assert report['data_dir'] == builder.data_dir


def test_prepare_latents_cli_matches_in_process_cache(tmp_path, raw_videos):
  import _tiny_vae
  from framedit_jax.vae import load_vae
  from framedit_jax.vae.cache_builder import build_latent_cache
  arch = dict(block_out_channels=(16, 32), layers_per_block=1, latent_channels=4, norm_num_groups=8)
  _, params = _tiny_vae.random_params(arch)
  vae_dir = str(tmp_path / 'vae')
  _tiny_vae.save(vae_dir, params, arch)
  data_dir = str(tmp_path / 'tfds')
  overrides = {'vae.name': 'sd', 'vae.checkpoint': vae_dir, 'data.image_size': 16, 'data.dataset': 'video_folder',
               'data.manual_dir': raw_videos, 'data.latents_dir': str(tmp_path / 'cli')}
  _launch('prepare_latents.py', f'--config={tu.REPO}/configs/demo.py', '--max_videos=1', '--shard_frames=64',
          f'--config.data.data_dir={data_dir}', *[f'--config.{k}={v}' for k, v in overrides.items()])
  config = tu.tiny_config(data_dir, **dict(overrides, **{'data.latents_dir': str(tmp_path / 'ref')}))
  ref = build_latent_cache(config, 'train', load_vae(config.vae), shard_frames=64, max_videos=1)
  with open(tmp_path / 'cli' / 'train' / 'index.json') as f:
    got = json.load(f)
  assert got['videos'] == ref['videos'] and got['shards'] == ref['shards'] and len(ref['videos']) == 1
  for shard in ref['shards']:
    np.testing.assert_allclose(np.load(tmp_path / 'cli' / 'train' / shard),
                               np.load(tmp_path / 'ref' / 'train' / shard), atol=1e-5)

"""Latent cache: built from the sample_videos TFDS dataset, read back by make_latent_dataset.

References: (1) the pixel pipeline `framedit_jax.data.pipeline.make_dataset` with the same config, encoded
on the fly by the same VAE (mode): the cached batches must be the same clips, flips and joint-training
images; (2) the posterior: standardised samples are N(0, 1); (3) resume and host-split invariances.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import demo
from framedit_jax.data.pipeline import make_dataset
from framedit_jax.train import experiment
from framedit_jax.vae.autoencoder_kl import AutoencoderKL
from framedit_jax.vae.cache_builder import build_latent_cache
from framedit_jax.vae.latent_cache import make_latent_dataset, read_index
from framedit_jax.vae.video import VideoVAE

TINY = dict(block_out_channels=(16, 32, 32), layers_per_block=1, latent_channels=4, norm_num_groups=8)


def _config(tmp, **data):
  config = demo.get_config()
  config.data.data_dir = str(tmp / 'tfds')
  config.data.latents_dir = str(tmp / 'latents')
  config.data.global_batch_size = 4
  config.data.num_frames = 4
  config.data.frame_interval = 3
  config.data.use_image_num = 1
  config.vae.scale_factor = 0.18215
  config.data.random_flip = True  # explicit (sample_videos' rule): both pipelines flip
  for k, v in data.items():
    config.data[k] = v
  return config


@pytest.fixture(scope='module')
def cache(tmp_path_factory):
  tmp = tmp_path_factory.mktemp('latent_cache')
  module = AutoencoderKL(**TINY)
  shapes = jax.eval_shape(module.init, jax.random.key(0), jnp.zeros((1, 8, 8, 3)))['params']
  rng = np.random.default_rng(0)
  params = jax.tree_util.tree_map(lambda s: rng.normal(0, 0.2, s.shape).astype(np.float32), shapes)
  vae = VideoVAE(module, params, scale_factor=0.18215, chunk_size=32)
  index = build_latent_cache(_config(tmp), 'train', vae, shard_frames=300)
  return tmp, vae, index


def test_index_and_shards(cache):
  tmp, _, index = cache
  assert read_index(str(tmp / 'latents' / 'train')) == index
  assert [v['num_frames'] for v in index['videos']] == [132, 250, 120]  # every frame of the 3 videos
  assert index['latent_shape'] == [8, 8, 4] and index['flipped']  # sample_videos trains with flips
  assert len(index['shards']) == 2  # shard closed after >= 300 frames (with flipped copies)
  shard = np.load(tmp / 'latents' / 'train' / index['shards'][0], mmap_mode='r')
  assert shard.shape == (2 * (132 + 250), 8, 8, 8) and shard.dtype == np.float32
  assert shard[..., 4:].min() >= -30 and shard[..., 4:].max() <= 20


def test_same_clips_as_pixel_pipeline(cache):
  """Cached mode latents == on-the-fly encoding of the pixel pipeline's batch at the same step."""
  tmp, vae, _ = cache
  config = _config(tmp, latent_sample=False)
  pixel_it = make_dataset(config, 'train')
  config.data.use_latents = True
  latent_it = experiment.make_dataset(config, 'train')  # the experiment layer picks make_latent_dataset
  for step in (0, 1, 5):
    pixels = pixel_it.batch(step)
    latents = latent_it.batch(step)
    assert latents['video'].shape == (4, 5, 8, 8, 4) and latents['video'].dtype == np.float32
    expected = np.asarray(vae.encode_video(pixels['video'], sample=False))
    np.testing.assert_allclose(latents['video'], expected, atol=2e-5, rtol=0)
    np.testing.assert_array_equal(latents['label'], pixels['label'])
  pixel_it.close()


def test_posterior_sample_resume_and_hosts(cache):
  tmp, _, _ = cache
  config = _config(tmp)
  it = make_latent_dataset(config, 'train')
  mode_it = make_latent_dataset(_config(tmp, latent_sample=False), 'train')
  b0 = next(it)
  # Standardised sample (z/s - mean) / std ~ N(0, 1), with mean/std from the stored posterior.
  std = np.concatenate([np.exp(0.5 * np.split(it.example(q)[0], 2, -1)[1])[None] for q in it.positions(0)])
  eps = (b0['video'] - mode_it.batch(0)['video']) / (0.18215 * std)
  assert abs(eps.mean()) < 0.05 and abs(eps.std() - 1) < 0.05, (eps.mean(), eps.std())
  b1 = next(it)
  state = json.loads(json.dumps(it.get_state()))
  b2 = next(it)
  assert state['step'] == 2
  resumed = make_latent_dataset(config, 'train')
  resumed.set_state(state)
  np.testing.assert_array_equal(next(resumed)['video'], b2['video'])
  assert not np.array_equal(b1['video'], b2['video'])
  # Two hosts: each gets half of the global batch, the same examples as the single host.
  halves = [make_latent_dataset(config, 'train', process_index=p, process_count=2).batch(1) for p in (0, 1)]
  np.testing.assert_array_equal(np.concatenate([h['video'] for h in halves]), b1['video'])


def test_missing_cache_is_one_line_error(tmp_path):
  config = _config(tmp_path, use_latents=True)
  with pytest.raises(FileNotFoundError) as err:
    make_latent_dataset(config, 'train')
  assert 'prepare_latents.py' in str(err.value) and '\n' not in str(err.value)


def test_periodic_fvd_decodes_latents_with_the_vae(cache, monkeypatch):
  """Periodic FVD on a latent-cache config: real clips reach I3D as pixels decoded by the VAE, not latents."""
  import types
  from framedit_jax.eval import fvd as fvd_lib
  from framedit_jax.train import loop
  tmp, vae, _ = cache
  config = _config(tmp, use_latents=True, num_frames=4)
  config.vae.name = 'sd'
  config.train.fvd_num_videos = 3
  config.sample.batch_size = 2
  seen = []

  def extractor(clips):  # a cheap stand-in for I3D: records what it is fed
    seen.append(np.asarray(clips).shape)
    return np.asarray(clips, np.float64).reshape(len(clips), -1)[:, :6]

  monkeypatch.setattr(loop, 'fvd_extractor', lambda: extractor)
  pixels = np.random.default_rng(1).uniform(-1, 1, (2, 4, 32, 32, 3)).astype(np.float32)
  exp = types.SimpleNamespace(config=config, vae=vae, pixel_space=False,
                              dataset=lambda seed_offset=0: experiment.make_dataset(
                                  _with_seed(config, config.seed + seed_offset), 'train'),
                              generate=lambda params, key, n, labels=None: pixels[:n],
                              default_labels=lambda n, start=0: None)
  run = types.SimpleNamespace(exp=exp, config=config, sample_key=jax.random.PRNGKey(0), _fvd={},
                              state=types.SimpleNamespace(ema_params=None),
                              writer=types.SimpleNamespace(write_scalars=lambda *a: None))
  run.real_clips = lambda n: loop._Run.real_clips(run, n)  # pylint: disable=protected-access
  value = loop._Run.fvd(run, 5)  # pylint: disable=protected-access

  latents = make_latent_dataset(_with_seed(config, config.seed + 7919), 'train')
  real = []
  for step in range(2):
    real.append(np.clip(np.asarray(vae.decode_video(latents.batch(step)['video'][:, :4])), -1, 1))
  real = np.concatenate(real)[:3]
  assert seen[0] == (3, 4, 32, 32, 3)  # decoded pixels, not (3, 4, 8, 8, 4) latents
  np.testing.assert_allclose(run._fvd['real'], real, atol=1e-5)  # pylint: disable=protected-access
  fake = np.concatenate([pixels, pixels])[:3]
  assert value == pytest.approx(fvd_lib.fvd_from_arrays(real, fake, extractor), rel=1e-6)


def _with_seed(config, seed):
  config = config.copy_and_resolve_references()
  config.seed = seed
  return config

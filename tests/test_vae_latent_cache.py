"""Latent cache: built from the sample_videos TFDS dataset, read back by make_latent_dataset.

References: (1) the pixel pipeline `framedit_jax.data.pipeline.make_dataset` with the same config, encoded
on the fly by the same VAE (mode): the cached batches must be the same clips, flips and joint-training
images; (2) the posterior: standardised samples are N(0, 1); (3) resume and host-split invariances.
"""

import json

import jax
import numpy as np
import pytest

import _tiny_vae
from configs import demo
from framedit_jax.data.pipeline import make_dataset
from framedit_jax.train import experiment
from framedit_jax.vae.cache_builder import build_latent_cache
from framedit_jax.vae.latent_cache import make_latent_dataset, read_index
from framedit_jax.vae.video import VideoVAE



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
  module, params = _tiny_vae.random_params()
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


def _logged_scalars(workdir, tag):
  """{step: value} of a scalar written by the run's TensorBoard writer (clu writes scalars as tensors)."""
  from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=g-import-not-at-top
  from tensorboard.util import tensor_util  # pylint: disable=g-import-not-at-top
  acc = event_accumulator.EventAccumulator(str(workdir), size_guidance={event_accumulator.TENSORS: 0})
  acc.Reload()
  return {e.step: float(tensor_util.make_ndarray(e.tensor_proto)) for e in acc.Tensors(tag)}


def test_periodic_fvd_runs_in_the_loop_on_latents(cache, tmp_path, monkeypatch):
  """`train.fvd_every` for real: a 2-step latent-cache run of the training loop with the I3D FVD at step 2.

  Reference, computed here independently: real clips = the cache's separate stream (seed + 7919) decoded by the
  same VAE (pixels, not latents), fakes = the final EMA weights sampled with the loop's keys. The loop's I3D
  (one real extractor, recording what it is given) must have seen exactly those clips, and the logged `eval/fvd`
  must equal the Frechet distance of the features it returned, so the loop's FVD wiring (stream, decoding,
  sampling, writer) is what runs. I3D itself is checked against its reference in test_eval_i3d.py.
  """
  from framedit_jax.eval import fvd as fvd_lib  # pylint: disable=g-import-not-at-top
  from framedit_jax.train import loop  # pylint: disable=g-import-not-at-top
  i3d, seen = fvd_lib.I3DFeatureExtractor(), []

  def recording(videos):
    features = np.asarray(i3d(videos), np.float64)
    seen.append((np.asarray(videos), features))
    return features

  monkeypatch.setattr(loop, 'fvd_extractor', lambda: recording)
  tmp, vae, _ = cache
  vae_dir = tmp_path / 'vae'
  _tiny_vae.save(vae_dir, vae.params)
  config = _config(tmp, use_latents=True, num_frames=9, frame_interval=1, use_image_num=0, global_batch_size=2)
  config.vae.name, config.vae.checkpoint = 'sd', str(vae_dir)
  config.model.overrides.hidden_size, config.model.overrides.depth, config.model.overrides.num_heads = 32, 2, 2
  t = config.train
  t.num_steps, t.fvd_every, t.fvd_num_videos, t.sample_every, t.ckpt_every, t.log_every = 2, 2, 3, 0, 2, 1
  config.sample.batch_size, config.sample.num_steps = 2, 2
  work = tmp_path / 'work'
  state = loop.train_and_evaluate(config, str(work))
  logged = _logged_scalars(work, 'eval/fvd')
  assert sorted(logged) == [2]

  latents = make_latent_dataset(_with_seed(config, config.seed + 7919), 'train')
  real = np.concatenate([np.clip(np.asarray(vae.decode_video(latents.batch(step)['video'][:, :9])), -1, 1)
                         for step in range(2)])[:3]
  assert real.shape == (3, 9, 32, 32, 3)
  exp = experiment.Experiment(config)
  key = jax.random.PRNGKey(config.seed + 1)
  fake = np.concatenate([exp.generate(state.ema_params, jax.random.fold_in(key, 10_000 + i), 2) for i in (0, 2)])
  (real_in, real_f), (fake_in, fake_f) = seen  # the loop scores the real clips, then the samples
  np.testing.assert_allclose(real_in, real, atol=1e-5)
  np.testing.assert_allclose(fake_in, fake[:3], atol=1e-5)
  recorded = iter([real_f, fake_f])  # fvd_from_arrays on the loop's own features, in its call order
  expected = fvd_lib.fvd_from_arrays(real_in, fake_in, lambda _: next(recorded))
  assert np.isfinite(expected) and expected > 0
  assert logged[2] == pytest.approx(expected, rel=1e-4)


def _with_seed(config, seed):
  config = config.copy_and_resolve_references()
  config.seed = seed
  return config

"""T2V from the latent cache (`data.use_latents`): prepare_latents stores each video's caption, the cache reader
emits it, and the T2V task trains on cached latents with the in-loop VAE encode skipped.

References: the pixel pipeline (`framedit_jax.data.pipeline.make_dataset`) with the same config gives the
captions, clips and order the cached batches must reproduce; the tiny SD-architecture VAE (random weights) encodes
the pixel batch for the latent comparison."""

import json
import os

import jax
import numpy as np
import pytest

import _tiny_vae
from configs import t2v_demo
from framedit_jax.data.pipeline import ClipSource, get_builder, make_dataset
from framedit_jax.train.loop import train_and_evaluate
from framedit_jax.train.tasks.t2v import write_demo_manual_dir
from framedit_jax.vae import load_vae
from framedit_jax.vae.cache_builder import build_latent_cache
from framedit_jax.vae.latent_cache import INDEX_FILE, make_latent_dataset

def _config(tmp):
  config = t2v_demo.get_config()
  config.vae.name = 'sd'
  config.vae.checkpoint = str(tmp / 'vae')
  config.vae.scale_factor = 0.18215
  config.model.overrides.patch_size = 2  # 32 px / 4 (tiny VAE) = 8x8 latents
  config.data.data_dir = str(tmp / 'tfds')
  config.data.latents_dir = str(tmp / 'latents')
  config.data.global_batch_size = 2
  config.train.num_steps = 2
  config.train.ckpt_every = 2
  config.sample.prompts = ()
  return config


@pytest.fixture(scope='module')
def cache(tmp_path_factory):
  tmp = tmp_path_factory.mktemp('t2v_latents')
  _, params = _tiny_vae.random_params()
  _tiny_vae.save(tmp / 'vae', params)
  config = _config(tmp)
  pixel = config.copy_and_resolve_references()
  pixel.data.manual_dir = write_demo_manual_dir(dict(config.data.demo_captions), str(tmp / 'raw'))
  vae = load_vae(config.vae)
  index = build_latent_cache(pixel, 'train', vae)
  return tmp, config, pixel, vae, index


def test_cache_stores_the_captions_in_video_order(cache):
  _, _, pixel, _, index = cache
  src = ClipSource(get_builder(pixel), 'train')
  assert len(index['videos']) == len(src) == 3
  assert [v['caption'] for v in index['videos']] == [src.caption(i) for i in range(len(src))]
  assert set(v['caption'] for v in index['videos']) == set(c for _, c in pixel.data.demo_captions)


def test_latent_batches_carry_the_pixel_pipelines_captions_and_clips(cache):
  _, config, pixel, vae, _ = cache
  pixel_it = make_dataset(pixel, 'train')
  latent_config = config.copy_and_resolve_references()
  latent_config.data.use_latents = True
  latent_config.data.latent_sample = False
  latent_it = make_latent_dataset(latent_config, 'train')
  for step in (0, 1, 4):
    p, z = pixel_it.batch(step), latent_it.batch(step)
    assert z['caption'].dtype == object
    assert list(z['caption']) == list(p['caption'])
    np.testing.assert_allclose(z['video'], np.asarray(vae.encode_video(p['video'], sample=False)), atol=2e-5,
                               rtol=0)
  pixel_it.close()


def test_t2v_trains_on_cached_latents_without_tfds_or_the_encoder(cache, tmp_path, monkeypatch):
  tmp, config, _, vae, _ = cache
  config = config.copy_and_resolve_references()
  config.data.use_latents = True
  config.data.data_dir = str(tmp_path / 'no_tfds')  # captions and clips must come from the cache alone

  def no_encode(*a, **k):
    raise AssertionError('the in-loop VAE encode ran on cached latents')

  from framedit_jax.vae.video import VideoVAE
  monkeypatch.setattr(VideoVAE, 'encode_video', no_encode)
  state = train_and_evaluate(config, str(tmp_path / 'run'))
  assert int(state.step) == 2
  assert not os.path.exists(tmp_path / 'no_tfds')
  text_cache = tmp / 'latents' / 'train' / 'text_cache.npz'  # beside the latent cache
  assert text_cache.is_file()
  assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(state.params))


def test_caption_less_cache_is_one_line_error(cache, tmp_path):
  tmp, config, _, _, index = cache
  bare = tmp_path / 'latents' / 'train'
  bare.mkdir(parents=True)
  for shard in index['shards']:
    os.symlink(tmp / 'latents' / 'train' / shard, bare / shard)
  old = dict(index, videos=[{k: v for k, v in e.items() if k != 'caption'} for e in index['videos']])
  (bare / INDEX_FILE).write_text(json.dumps(old))
  config = config.copy_and_resolve_references()
  config.data.use_latents = True
  config.data.latents_dir = str(tmp_path / 'latents')
  with pytest.raises(ValueError, match=r'holds no captions.*rebuild it with launch/prepare_latents.py') as e:
    train_and_evaluate(config, str(tmp_path / 'run'))
  assert '\n' not in str(e.value)

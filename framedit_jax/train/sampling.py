"""Video generation from a trained model and mp4 writing.

Used at the end of training, at ``config.train.sample_every`` intervals, and by ``launch/sample.py``.
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
  if s.sampler not in ('ddpm', 'ddim'):
    raise ValueError(f"config.sample.sampler must be 'ddpm' or 'ddim', got {s.sampler!r}.")
  respacing = f'ddim{s.num_steps}' if s.sampler == 'ddim' else str(s.num_steps)
  return create_diffusion(timestep_respacing=respacing, noise_schedule=d.noise_schedule,
                          learn_sigma=d.learn_sigma, diffusion_steps=d.diffusion_steps,
                          predict=d.get('predict', 'epsilon'))


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
    float32 ``(num, T, H, W, 3)`` in [-1, 1] (clipped).
  """
  y = None if labels is None else jnp.asarray(labels, jnp.int32)
  sampler = sampler or make_sampler(model, diffusion, config, (num,) + tuple(latent_shape))
  z = sampler(params, key, y)
  if vae is not None:
    z = vae.decode_video(z)
  return np.clip(np.asarray(z, np.float32), -1.0, 1.0)


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


def load_params_for_sampling(config, workdir: str | None, checkpoint: str | None, model, latent_shape,
                             mesh=None):
  """EMA params of the latest training checkpoint in ``workdir``, or the params of a converted checkpoint.

  Args:
    workdir: a training workdir (``<workdir>/checkpoints``); its EMA weights are used.
    checkpoint: alternatively, a directory written by ``launch/convert_checkpoint.py`` (``{'params': ...}``).
  Raises:
    FileNotFoundError: no checkpoint found (one line naming the directory).
  """
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  from framedit_jax.train import checkpoint as ckpt_lib  # pylint: disable=g-import-not-at-top
  from framedit_jax.train.loop import init_state  # pylint: disable=g-import-not-at-top
  from framedit_jax.train.optimizer import make_optimizer  # pylint: disable=g-import-not-at-top
  from framedit_jax.parallel import mesh as mesh_lib  # pylint: disable=g-import-not-at-top

  mesh = mesh or mesh_lib.make_mesh(config.mesh)
  if checkpoint:
    path = os.path.abspath(checkpoint)
    if not os.path.exists(path):
      raise FileNotFoundError(f'--checkpoint {path} does not exist; write one with launch/convert_checkpoint.py.')
    restored = ocp.StandardCheckpointer().restore(path)
    return restored['params'] if 'params' in restored else restored
  ckpt = ckpt_lib.Checkpointer(ckpt_lib.checkpoint_dir(workdir), async_save=False)
  if ckpt.latest_step() is None:
    raise FileNotFoundError(f'No checkpoint in {ckpt.directory}; train first or pass --checkpoint.')
  optimizer = make_optimizer(config.optim)
  abstract = jax.eval_shape(lambda: init_state(config, model, optimizer, mesh, latent_shape)[0])
  shardings = mesh_lib.state_shardings(mesh, abstract)
  state, _ = ckpt.restore(abstract, shardings)
  ckpt.close()
  return state.ema_params


def sample_to_dir(config, out_dir: str, *, workdir: str | None = None, checkpoint: str | None = None,
                  num_samples: int | None = None, batch_size: int | None = None, labels=None,
                  seed: int = 0) -> list[str]:
  """Samples ``num_samples`` videos in batches and streams them to ``out_dir`` as numbered mp4s + a grid.

  Memory is bounded by one batch: each batch is decoded and written before the next is sampled.

  Args:
    config: the run config (model, data, vae, diffusion, sample fields).
    out_dir: destination; files ``000000.mp4, 000001.mp4, ...`` and ``grid.mp4``.
    workdir / checkpoint: where the weights come from (see ``load_params_for_sampling``).
    num_samples, batch_size: default ``config.sample.num_samples`` / ``config.sample.batch_size``.
    labels: int class labels (cycled) for class-conditional models; default ``arange % num_classes``.
    seed: batch ``i`` uses ``fold_in(PRNGKey(seed), i)``, so results do not depend on the batch split order.
  Returns:
    the written per-video paths.
  """
  from framedit_jax.train.loop import build_model, latent_frames  # pylint: disable=g-import-not-at-top
  from framedit_jax.vae import load_vae  # pylint: disable=g-import-not-at-top
  from framedit_jax.parallel import mesh as mesh_lib  # pylint: disable=g-import-not-at-top

  num_samples = int(num_samples or config.sample.num_samples)
  batch_size = int(batch_size or config.sample.batch_size)
  vae = load_vae(config.vae)
  latent_size = config.data.image_size // vae.downsample
  t_latent = latent_frames(config, vae)
  latent_shape = (t_latent + config.data.use_image_num, latent_size, latent_size, vae.latent_channels)
  model = build_model(config, vae.latent_channels, latent_size, t_latent)
  mesh = mesh_lib.make_mesh(config.mesh)
  with jax.set_mesh(mesh):
    params = load_params_for_sampling(config, workdir, checkpoint, model, latent_shape, mesh)
  diffusion = sampling_diffusion(config)
  sampler = make_sampler(model, diffusion, config, (batch_size,) + latent_shape)
  nc = int(config.model.num_classes)
  if nc > 0:
    labels = np.resize(np.asarray(labels if labels is not None else np.arange(num_samples) % nc), num_samples)
  os.makedirs(out_dir, exist_ok=True)
  paths, grid = [], []
  key = jax.random.PRNGKey(seed)
  for b, start in enumerate(range(0, num_samples, batch_size)):
    n = min(batch_size, num_samples - start)
    y = None
    if nc > 0:
      y = np.resize(labels[start:start + n], batch_size)
    with jax.set_mesh(mesh):
      videos = generate(model, params, diffusion, config, jax.random.fold_in(key, b), batch_size,
                        latent_shape=latent_shape, labels=y, vae=None if config.vae.name == 'identity' else vae,
                        sampler=sampler)[:n, :config.data.num_frames]
    for i, v in enumerate(videos):
      paths.append(write_mp4(os.path.join(out_dir, f'{start + i:06d}.mp4'), v, config.sample.fps))
    if len(grid) < 16:
      grid.extend(list(videos[:16 - len(grid)]))
    print(f'sampled {start + n}/{num_samples} videos -> {out_dir}', flush=True)
  write_mp4(os.path.join(out_dir, 'grid.mp4'), video_grid(np.stack(grid)), config.sample.fps)
  return paths

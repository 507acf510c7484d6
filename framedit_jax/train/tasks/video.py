"""Video diffusion, class-conditional or unconditional (FrameDiT / Latte / VideoDiT / DiT3D): `config.task='video'`.

Batch source: JPEG-frame records through Grain (`framedit_jax.data.pipeline`) or the VAE latent cache
(`framedit_jax.vae.latent_cache`), both sharded by process; joint image-video steps (`data.video_prob`).
State: `TrainState` (params, AdamW state, EMA, rng); `config.model.init_from` loads converted params at step 0.
Step: `framedit_jax.train.step.train_step` (IDDPM hybrid loss or rectified flow, label dropout for CFG).
Samples: EMA videos decoded by the VAE, mp4s + grid + PNG strip in `<workdir>/samples`.
"""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

from framedit_jax.data.joint import joint_batch
from framedit_jax.parallel import mesh as mesh_lib
from framedit_jax.train import generate as gen
from framedit_jax.train.init_from import apply_init_from
from framedit_jax.train.optimizer import make_optimizer
from framedit_jax.train.state import create_train_state
from framedit_jax.train.tasks.base import Task


def latent_frames(config, vae) -> int:
  """Latent frames of a ``config.data.num_frames`` clip: fewer with a temporally compressing VAE (DP-VAE)."""
  fn = getattr(vae, 'latent_frames', None)
  return int(config.data.num_frames) if fn is None else int(fn(int(config.data.num_frames)))


def build_model(config, latent_channels: int, latent_size: int, num_frames: int | None = None):
  """The backbone named by ``config.model.name`` at the latent resolution and channels.

  ``num_frames``: latent frames (default ``config.data.num_frames``; fewer with a DP-VAE, see ``latent_frames``).
  """
  from framedit_jax.models import get_model  # pylint: disable=g-import-not-at-top
  from framedit_jax.models.cpu.defaults import model_settings  # pylint: disable=g-import-not-at-top
  m, d = config.model, config.data
  overrides = dict(
      input_size=latent_size, num_frames=d.num_frames if num_frames is None else num_frames,
      in_channels=latent_channels,
      num_classes=m.num_classes, class_dropout_prob=m.class_dropout_prob, learn_sigma=m.learn_sigma,
      dtype=m.dtype, attention_kernel=m.attention_kernel, remat=m.remat, use_image_num=d.use_image_num,
      **model_settings(m))  # scan_blocks, remat_policy, cpu_kernels: 'auto' per backend (models/cpu/defaults.py)
  if int(config.get('mesh', {}).get('frame', 1)) != 1:  # frame parallelism: the train step shard_maps the model over T
    overrides['frame_axis'] = 'frame'
    overrides['context_parallel'] = m.get('context_parallel', 'gather')  # parallel/context_parallel.py
  overrides.update(dict(m.get('overrides', {})))
  return get_model(m.name, **overrides)


def training_diffusion(config):
  """The full-length (1000-step) diffusion of ``config.diffusion`` used for the training loss."""
  from framedit_jax.diffusion import create_diffusion  # pylint: disable=g-import-not-at-top
  d = config.diffusion
  if d.get('objective', 'iddpm') != 'iddpm':  # e.g. 'rectified_flow' (framedit_jax.diffusion.objectives)
    from framedit_jax.diffusion.objectives import create_objective  # pylint: disable=g-import-not-at-top
    return create_objective(d, config.sample.num_steps)
  return create_diffusion(timestep_respacing='', noise_schedule=d.noise_schedule, learn_sigma=d.learn_sigma,
                          diffusion_steps=d.diffusion_steps, predict=d.get('predict', 'epsilon'))


def _init_fn(config, model, optimizer, latent_shape):
  def init_fn(rng):
    k_params, k_drop, k_state = jax.random.split(rng, 3)
    x = jnp.zeros((1,) + tuple(latent_shape), jnp.float32)
    t = jnp.zeros((1,), jnp.int32)
    y = jnp.zeros((1,), jnp.int32) if config.model.num_classes > 0 else None
    params = model.init({'params': k_params, 'dropout': k_drop}, x, t, y=y)['params']
    return create_train_state(params, optimizer, k_state)
  return init_fn


def init_state(config, model, optimizer, mesh, latent_shape: tuple[int, ...]):
  """Creates the sharded ``TrainState`` with ``jit(init, out_shardings=...)``.

  Returns ``(state, state_shardings)``.
  """
  init_fn = _init_fn(config, model, optimizer, latent_shape)
  rng = jax.random.PRNGKey(config.seed)
  abstract = jax.eval_shape(init_fn, rng)
  shardings = mesh_lib.state_shardings(mesh, abstract)
  state = jax.jit(init_fn, out_shardings=shardings)(rng)
  state = apply_init_from(config, state, shardings)  # config.model.init_from (e.g. an image-DiT init)
  return state, shardings


def make_dataset(config, split: str, *, process_index: int = 0, process_count: int = 1):
  """Host-local batch iterator: the latent cache when ``config.data.use_latents``, else JPEG-frame records.

  See ``framedit_jax.data.pipeline.make_dataset`` and ``framedit_jax.vae.latent_cache.make_latent_dataset``
  (same batch keys and the same clips; latents are already scaled by ``vae.scale_factor``).
  """
  from framedit_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  if config.data.get('use_latents', False):
    from framedit_jax.vae import latent_cache  # pylint: disable=g-import-not-at-top
    return latent_cache.make_latent_dataset(config, split, process_index=process_index,
                                            process_count=process_count)
  return pipeline.make_dataset(config, split, process_index=process_index, process_count=process_count)


def train_flops(config, latent_shape) -> float | None:
  """Analytic model FLOPs of one train step (framedit_jax.models.flops), for the MFU metric; None (with a
  warning) for an architecture the FLOP model does not cover."""
  from absl import logging  # pylint: disable=g-import-not-at-top
  from framedit_jax.models import flops  # pylint: disable=g-import-not-at-top
  m, d = config.model, config.data
  arch = {k: v for k, v in dict(m.get('overrides', {})).items()
          if k in ('depth', 'hidden_size', 'num_heads', 'patch_size', 'mlp_ratio', 'qk_col_dim', 'v_col_dim',
                   'num_col_heads', 'fuse_mode')}
  try:
    shape = flops.shape_from_name(m.name, input_size=latent_shape[1], num_frames=d.num_frames + d.use_image_num,
                                  batch_size=d.global_batch_size, in_channels=latent_shape[-1], **arch)
    return float(flops.train_step_flops(shape))
  except (KeyError, TypeError, ValueError) as e:
    logging.warning('No FLOP count for %s (%s); MFU is not reported.', m.name, e)
    return None


class VideoTask(Task):
  """Class-conditional / unconditional video diffusion (see the module docstring)."""

  name = 'video'
  log_keys = ('loss', 'mse', 'vb', 'grad_norm')

  def __init__(self, config, mesh, vae):
    super().__init__(config, mesh)
    self.vae = vae
    self.pixel_space = config.vae.name == 'identity'
    d = config.data
    latent_size = int(d.image_size) // vae.downsample
    t_latent = latent_frames(config, vae)
    self.latent_shape = (t_latent + int(d.use_image_num), latent_size, latent_size, vae.latent_channels)
    self.model = build_model(config, vae.latent_channels, latent_size, t_latent)
    self.optimizer = make_optimizer(config.optim)
    self._sampler = None

  # ------------------------------------------------------------------ data
  def dataset(self, split, *, process_index=0, process_count=1, config=None):
    return make_dataset(config or self.config, split, process_index=process_index, process_count=process_count)

  def host_batch(self, raw, step):
    out = {'video': np.asarray(raw['video'], np.float32)}
    out['label'] = np.asarray(raw.get('label', np.zeros(out['video'].shape[0], np.int32)), np.int32)
    if 'label_image' in self.batch_spec():
      out['label_image'] = np.asarray(raw['label_image'], np.int32)
    return joint_batch(out, self.config, step)  # an image step w.p. 1 - data.video_prob

  def batch_spec(self):
    d = self.config.data
    b, t = int(d.global_batch_size), int(d.num_frames) + int(d.use_image_num)
    if self.config.data.get('use_latents', False) or self.pixel_space:
      video = (b,) + self.latent_shape
    else:
      video = (b, t, int(d.image_size), int(d.image_size), 3)
    out = {'video': jax.ShapeDtypeStruct(video, jnp.float32), 'label': jax.ShapeDtypeStruct((b,), jnp.int32)}
    if int(d.use_image_num) and int(self.config.model.num_classes):
      out['label_image'] = jax.ShapeDtypeStruct((b, int(d.use_image_num)), jnp.int32)
    return out

  # ------------------------------------------------------------------ state and step
  def init_state(self, rng):
    return _init_fn(self.config, self.model, self.optimizer, self.latent_shape)(rng)

  def load_init(self, state, shardings):
    return apply_init_from(self.config, state, shardings)  # config.model.init_from (e.g. an image-DiT init)

  def step_fn(self):
    from framedit_jax.train.step import train_step  # pylint: disable=g-import-not-at-top
    fn = functools.partial(train_step, model=self.model, diffusion=training_diffusion(self.config),
                           optimizer=self.optimizer, config=self.config)
    return lambda state, batch, frozen: fn(state, batch)

  def encoder(self):
    """Jitted VAE encode of the pixel batch when training on pixels through a VAE, else None."""
    return vae_encoder(self.config, self.vae, self.pixel_space)

  def flops_per_step(self):
    return train_flops(self.config, self.latent_shape)

  def describe(self, state):
    return (f'Model {self.config.model.name}: {self.num_params(state) / 1e6:.2f}M parameters, '
            f'latent {self.latent_shape}')

  # ------------------------------------------------------------------ sampling
  def sampler(self):
    """The ``generate.Sampler`` of this config (its compiled samplers are cached per shape, params are arguments)."""
    if self._sampler is None:
      self._sampler = gen.Sampler(gen.class_apply_fn(self.model), self.config, self.vae.latent_channels)
    return self._sampler

  def generate(self, params, key: jax.Array, num: int, labels: np.ndarray | None = None,
               cfg_scale: float | None = None) -> np.ndarray:
    """``num`` videos, float32 ``(num, num_frames, H, W, 3)`` in [-1, 1], decoded by the VAE for latent
    models; image-joint frames are dropped. ``labels``: int ``(num,)`` for class-conditional models, guided
    against the null label when ``cfg_scale`` (default ``config.sample.cfg_scale``) is not 1."""
    scale = float(self.config.sample.cfg_scale if cfg_scale is None else cfg_scale)
    cond, null_cond = gen.label_condition(labels, int(self.config.model.num_classes), scale)
    with jax.set_mesh(self.mesh):
      videos = gen.generate(self.sampler(), params, key, (int(num),) + self.latent_shape, cond, null_cond,
                            vae=None if self.pixel_space else self.vae, cfg_scale=scale)
    return videos[:, :int(self.config.data.num_frames)]

  def default_labels(self, n: int, start: int = 0) -> np.ndarray | None:
    """``arange(start, start + n) % num_classes`` for class-conditional models, else None."""
    nc = int(self.config.model.num_classes)
    return (np.arange(start, start + n) % nc) if nc > 0 else None

  def samples(self, state, step, workdir, writer, frozen=None):
    """``sample.num_samples`` EMA videos as mp4s + a grid mp4 + a PNG strip of their frames in ``<workdir>/samples``
    (written by process 0)."""
    n = int(self.config.sample.num_samples)
    key = jax.random.PRNGKey(self.config.seed + 1)
    videos = self.generate(state.ema_params, key, n, self.default_labels(n))
    return write_samples(videos, workdir, step, self.config.sample.fps, writer)


def vae_encoder(config, vae, pixel_space: bool):
  """``(batch, key) -> batch`` with ``batch['video']`` `(B, T, H, W, 3)` in [-1, 1] replaced by its sampled VAE
  latents `(B, T', h, w, C)` (jitted once), or None when the batch is already latents (``data.use_latents``) or
  the model trains in pixel space (``vae.name='identity'``). Shared by the diffusion tasks."""
  if pixel_space or config.data.get('use_latents', False):
    return None
  encode = jax.jit(lambda v, k: vae.encode_video(v, key=k, sample=True))
  return lambda batch, key: dict(batch, video=encode(batch['video'], key))


def write_samples(videos: np.ndarray, workdir: str, step: int, fps: int, writer, names=None) -> list[str]:
  """Process 0 writes ``videos`` (N, T, H, W, 3) in [-1, 1] as ``<workdir>/samples/step_XXXXXXXX_NN.mp4`` (or
  ``..._<name>.mp4``), a grid mp4, a PNG strip and their first frames to TensorBoard. Returns the mp4 paths."""
  if jax.process_index() != 0:
    return []
  out_dir = os.path.join(workdir, 'samples')
  names = names or [f'{i:02d}' for i in range(len(videos))]
  paths = [gen.write_mp4(os.path.join(out_dir, f'step_{step:08d}_{name}.mp4'), v, fps)
           for name, v in zip(names, videos)]
  gen.write_mp4(os.path.join(out_dir, f'step_{step:08d}_grid.mp4'), gen.video_grid(videos), fps)
  gen.write_png(os.path.join(out_dir, f'step_{step:08d}_strip.png'), gen.frame_strip(videos))
  writer.write_images(step, {'samples/first_frames': gen.to_uint8(videos[:, 0])})
  print(f'Wrote {len(paths)} sample videos to {out_dir}', flush=True)
  return paths

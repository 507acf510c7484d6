"""The experiment layer: everything a config builds, in one place.

`Experiment(config)` validates the config (one-line errors before anything compiles), loads the VAE, makes
the device mesh and the backbone, and then hands out the pieces every entry point needs:

  * ``create_state()`` / ``restore(state, shardings, ckpt)``: the sharded ``TrainState`` (``jit(init,
    out_shardings)``) and its orbax restore;
  * ``dataset(split)``: the host-local batch iterator (JPEG-frame records or the latent cache);
  * ``train_step(state_shardings)``, ``encoder()``: the jitted step and the in-loop VAE encoder;
  * ``generate(params, key, num, labels)``: EMA samples decoded to pixels (jitted sampler cached per shape);
  * ``load_params(workdir, checkpoint)``: EMA weights of a training run or params of a converted checkpoint.

Used by ``train/loop.py``, ``launch/{train,sample,eval,convert_checkpoint}.py`` and ``benchmarks/``.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from framedit_jax.parallel import mesh as mesh_lib
from framedit_jax.train import generate as gen
from framedit_jax.train.init_from import apply_init_from
from framedit_jax.train.optimizer import make_optimizer
from framedit_jax.train.state import create_train_state
from framedit_jax.train.validate import validate_config


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


def init_state(config, model, optimizer, mesh, latent_shape: tuple[int, ...]):
  """Creates the sharded ``TrainState`` with ``jit(init, out_shardings=...)``.

  Returns ``(state, state_shardings)``.
  """
  def init_fn(rng):
    k_params, k_drop, k_state = jax.random.split(rng, 3)
    x = jnp.zeros((1,) + tuple(latent_shape), jnp.float32)
    t = jnp.zeros((1,), jnp.int32)
    y = jnp.zeros((1,), jnp.int32) if config.model.num_classes > 0 else None
    params = model.init({'params': k_params, 'dropout': k_drop}, x, t, y=y)['params']
    return create_train_state(params, optimizer, k_state)

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


class Experiment:
  """Model, VAE, mesh and samplers of one config (see the module docstring).

  Args:
    config: a full run config (configs/default.py fields).
    devices: devices of the mesh (default: all).
  Raises:
    ValueError / FileNotFoundError: invalid config or missing VAE weights (one line, nothing compiled yet).
  """

  def __init__(self, config, *, devices=None):
    from framedit_jax.vae import load_vae  # pylint: disable=g-import-not-at-top
    validate_config(config)
    self.config = config
    self.vae = load_vae(config.vae)
    self.pixel_space = config.vae.name == 'identity'
    self.mesh = mesh_lib.make_mesh(config.mesh, devices=devices)
    validate_config(config, mesh=self.mesh, vae=self.vae)
    d = config.data
    latent_size = int(d.image_size) // self.vae.downsample
    t_latent = latent_frames(config, self.vae)
    self.latent_shape = (t_latent + int(d.use_image_num), latent_size, latent_size, self.vae.latent_channels)
    self.model = build_model(config, self.vae.latent_channels, latent_size, t_latent)
    self.optimizer = make_optimizer(config.optim)
    self._samplers: dict[tuple[int, ...], Any] = {}
    self._sample_diffusion = None

  # ------------------------------------------------------------------ state
  def create_state(self):
    """``(state, state_shardings)``: the freshly initialised sharded ``TrainState``."""
    with jax.set_mesh(self.mesh):
      return init_state(self.config, self.model, self.optimizer, self.mesh, self.latent_shape)

  def abstract_state(self):
    """``(abstract TrainState, state_shardings)`` without allocating anything."""
    abstract = jax.eval_shape(
        lambda: init_state(self.config, self.model, self.optimizer, self.mesh, self.latent_shape)[0])
    return abstract, mesh_lib.state_shardings(self.mesh, abstract)

  def restore(self, ckpt, target, shardings):
    """``(state, data_state, step)`` of ``ckpt``'s latest checkpoint, or ``(target, {}, 0)`` when none."""
    if ckpt.latest_step() is None:
      return target, {}, 0
    state, data_state = ckpt.restore(target, shardings)
    return state, data_state, int(state.step)

  # ------------------------------------------------------------------ data and step
  def dataset(self, split: str | None = None, *, seed_offset: int = 0):
    """This process's batch iterator of ``split`` (default ``data.split``); ``seed_offset`` gives a separate
    clip stream (e.g. real clips for FVD) without touching the training stream."""
    config = self.config
    if seed_offset:
      config = config.copy_and_resolve_references()
      with config.unlocked():
        config.seed = self.config.seed + seed_offset
    return make_dataset(config, split or self.config.data.split, process_index=jax.process_index(),
                        process_count=jax.process_count())

  def batch_shardings(self):
    """Shardings of the global batch dict (batch axis over data*fsdp)."""
    out = {'video': mesh_lib.batch_sharding(self.mesh, 5), 'label': mesh_lib.batch_sharding(self.mesh, 1)}
    if int(self.config.data.use_image_num) and int(self.config.model.num_classes):
      out['label_image'] = mesh_lib.batch_sharding(self.mesh, 2)
    return out

  def train_step(self, state_shardings):
    """The jitted, donated train step for this config (``framedit_jax.train.step``)."""
    from framedit_jax.train.step import make_train_step  # pylint: disable=g-import-not-at-top
    return make_train_step(self.model, training_diffusion(self.config), self.optimizer, self.config,
                           state_shardings=state_shardings, batch_shardings=self.batch_shardings())

  def encoder(self):
    """Jitted ``encode(video, key) -> scaled latents`` when training on pixels through the VAE, else None."""
    if self.pixel_space or self.config.data.get('use_latents', False):
      return None
    vae = self.vae
    return jax.jit(lambda v, k: vae.encode_video(v, key=k, sample=True))

  # ------------------------------------------------------------------ sampling
  def sampler(self, batch_size: int):
    """The jitted sampler for ``batch_size`` videos (built once per shape)."""
    shape = (int(batch_size),) + self.latent_shape
    if shape not in self._samplers:
      if self._sample_diffusion is None:
        self._sample_diffusion = gen.sampling_diffusion(self.config)
      self._samplers[shape] = gen.make_sampler(self.model, self._sample_diffusion, self.config, shape)
    return self._samplers[shape]

  def generate(self, params, key: jax.Array, num: int, labels: np.ndarray | None = None) -> np.ndarray:
    """``num`` videos, float32 ``(num, num_frames, H, W, 3)`` in [-1, 1], decoded by the VAE for latent
    models; image-joint frames are dropped. ``labels``: int ``(num,)`` for class-conditional models."""
    with jax.set_mesh(self.mesh):
      sampler = self.sampler(num)
      videos = gen.generate(self.model, params, self._sample_diffusion, self.config, key, num,
                            latent_shape=self.latent_shape, labels=labels,
                            vae=None if self.pixel_space else self.vae, sampler=sampler)
    return videos[:, :int(self.config.data.num_frames)]

  def default_labels(self, n: int, start: int = 0) -> np.ndarray | None:
    """``arange(start, start + n) % num_classes`` for class-conditional models, else None."""
    nc = int(self.config.model.num_classes)
    return (np.arange(start, start + n) % nc) if nc > 0 else None

  def load_params(self, workdir: str | None = None, checkpoint: str | None = None):
    """EMA params of the latest checkpoint in ``workdir``, or the params of a converted ``checkpoint`` dir.

    Raises:
      FileNotFoundError: no checkpoint found (one line naming the directory).
    """
    import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
    from framedit_jax.train import checkpoint as ckpt_lib  # pylint: disable=g-import-not-at-top
    if checkpoint:
      path = os.path.abspath(checkpoint)
      if not os.path.exists(path):
        raise FileNotFoundError(f'--checkpoint {path} does not exist; write one with launch/convert_checkpoint.py.')
      restored = ocp.StandardCheckpointer().restore(path)
      return restored['params'] if 'params' in restored else restored
    ckpt = ckpt_lib.Checkpointer(ckpt_lib.checkpoint_dir(workdir), async_save=False)
    try:
      if ckpt.latest_step() is None:
        raise FileNotFoundError(f'No checkpoint in {ckpt.directory}; train first or pass --checkpoint.')
      with jax.set_mesh(self.mesh):
        abstract, shardings = self.abstract_state()
        state, _ = ckpt.restore(abstract, shardings)
    finally:
      ckpt.close()
    return state.ema_params


def sample_to_dir(config, out_dir: str, *, workdir: str | None = None, checkpoint: str | None = None,
                  num_samples: int | None = None, batch_size: int | None = None, labels=None,
                  seed: int = 0, save_npy: bool = False) -> list[str]:
  """Samples ``num_samples`` videos in batches and streams them to ``out_dir`` as numbered mp4s + a grid.

  Memory is bounded by one batch: each batch is decoded and written before the next is sampled.

  Args:
    config: the run config (model, data, vae, diffusion, sample fields).
    out_dir: destination; files ``000000.mp4, 000001.mp4, ...``, ``grid.mp4`` and ``strip.png`` (the first 16
      videos, one row of frames each).
    workdir / checkpoint: where the weights come from (see ``Experiment.load_params``).
    num_samples, batch_size: default ``config.sample.num_samples`` / ``config.sample.batch_size``.
    labels: int class labels (cycled) for class-conditional models; default ``arange % num_classes``.
    seed: batch ``i`` uses ``fold_in(PRNGKey(seed), i)``, so results do not depend on the batch split order.
    save_npy: also write each video losslessly as ``000000.npy``, uint8 ``(T, H, W, 3)``.
  Returns:
    the written per-video paths.
  """
  exp = Experiment(config)
  num_samples = int(num_samples or config.sample.num_samples)
  batch_size = int(batch_size or config.sample.batch_size)
  params = exp.load_params(workdir, checkpoint)
  nc = int(config.model.num_classes)
  if nc > 0:
    labels = np.resize(np.asarray(labels if labels is not None else np.arange(num_samples) % nc), num_samples)
  os.makedirs(out_dir, exist_ok=True)
  paths, grid = [], []
  key = jax.random.PRNGKey(seed)
  for b, start in enumerate(range(0, num_samples, batch_size)):
    n = min(batch_size, num_samples - start)
    y = np.resize(labels[start:start + n], batch_size) if nc > 0 else None
    videos = exp.generate(params, jax.random.fold_in(key, b), batch_size, labels=y)[:n]
    for i, v in enumerate(videos):
      paths.append(gen.write_mp4(os.path.join(out_dir, f'{start + i:06d}.mp4'), v, config.sample.fps))
      if save_npy:
        np.save(os.path.join(out_dir, f'{start + i:06d}.npy'), gen.to_uint8(v))
    if len(grid) < 16:
      grid.extend(list(videos[:16 - len(grid)]))
    print(f'sampled {start + n}/{num_samples} videos -> {out_dir}', flush=True)
  gen.write_mp4(os.path.join(out_dir, 'grid.mp4'), gen.video_grid(np.stack(grid)), config.sample.fps)
  gen.write_png(os.path.join(out_dir, 'strip.png'), gen.frame_strip(np.stack(grid)))
  return paths

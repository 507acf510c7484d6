"""``train_and_evaluate(config, workdir)``: the whole training run, resumable at any point.

Order of work (every user error surfaces before anything is compiled):
  1. validate the config, open the VAE and the dataset (one-line errors if missing);
  2. build mesh, model, diffusion, optimizer; create the sharded state with ``jit(init, out_shardings)``;
  3. restore the latest checkpoint in ``<workdir>/checkpoints`` (state + data position) if any;
  4. loop: host batch -> global array -> (VAE encode) -> jitted step; metrics to TensorBoard and console;
     checkpoints every ``ckpt_every`` steps, on SIGTERM/preemption and at the end;
  5. sample videos from the EMA weights and write mp4s to ``<workdir>/samples``.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
from typing import Any

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from framedit_jax.parallel import mesh as mesh_lib
from framedit_jax.train import checkpoint as ckpt_lib
from framedit_jax.train import metrics as metrics_lib
from framedit_jax.train import sampling
from framedit_jax.train.optimizer import make_optimizer
from framedit_jax.train.state import TrainState, create_train_state
from framedit_jax.train.step import make_train_step
from framedit_jax.train.validate import validate_config


class _StopSignal:
  """Turns SIGTERM/SIGINT into a flag the loop checks between steps (then it saves and exits)."""

  def __init__(self):
    self.received: int | None = None
    self._old = {}

  def __enter__(self):
    for sig in (signal.SIGTERM, signal.SIGINT):
      try:
        self._old[sig] = signal.signal(sig, self._handler)
      except ValueError:  # not the main thread
        pass
    return self

  def _handler(self, signum, frame):
    del frame
    self.received = signum

  def __exit__(self, *exc):
    for sig, old in self._old.items():
      signal.signal(sig, old)


def latent_frames(config, vae) -> int:
  """Latent frames of a ``config.data.num_frames`` clip: fewer with a temporally compressing VAE (DP-VAE)."""
  fn = getattr(vae, 'latent_frames', None)
  return int(config.data.num_frames) if fn is None else int(fn(int(config.data.num_frames)))


def build_model(config, latent_channels: int, latent_size: int, num_frames: int | None = None):
  """The backbone named by ``config.model.name`` at the latent resolution, channels and frames
  (``num_frames``: latent frames, default ``config.data.num_frames``)."""
  from framedit_jax.models import get_model  # pylint: disable=g-import-not-at-top
  m, d = config.model, config.data
  overrides = dict(
      input_size=latent_size, num_frames=d.num_frames if num_frames is None else num_frames,
      in_channels=latent_channels,
      num_classes=m.num_classes, class_dropout_prob=m.class_dropout_prob, learn_sigma=m.learn_sigma,
      dtype=m.dtype, attention_kernel=m.attention_kernel, remat=m.remat, use_image_num=d.use_image_num)
  if int(config.get('mesh', {}).get('frame', 1)) != 1:  # frame parallelism: the train step shard_maps the model over T
    overrides['frame_axis'] = 'frame'
  overrides.update(dict(m.get('overrides', {})))
  return get_model(m.name, **overrides)


def training_diffusion(config):
  from framedit_jax.diffusion import create_diffusion  # pylint: disable=g-import-not-at-top
  d = config.diffusion
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
  return state, shardings


def _host_batch(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  out = {'video': np.asarray(batch['video'], np.float32)}
  out['label'] = np.asarray(batch.get('label', np.zeros(out['video'].shape[0], np.int32)), np.int32)
  return out


def _train_flops(config, latent_shape) -> float | None:
  """Analytic model FLOPs of one train step (framedit_jax.models.flops), for the MFU metric."""
  from framedit_jax.models import flops  # pylint: disable=g-import-not-at-top
  m, d = config.model, config.data
  arch = {k: v for k, v in dict(m.get('overrides', {})).items()
          if k in ('depth', 'hidden_size', 'num_heads', 'patch_size', 'mlp_ratio', 'qk_col_dim', 'v_col_dim',
                   'num_col_heads', 'fuse_mode')}
  try:
    shape = flops.shape_from_name(m.name, input_size=latent_shape[1], num_frames=d.num_frames + d.use_image_num,
                                  batch_size=d.global_batch_size, in_channels=latent_shape[-1], **arch)
    return float(flops.train_step_flops(shape))
  except (KeyError, TypeError, ValueError) as e:  # an architecture the FLOP model does not cover
    logging.warning('No FLOP count for %s (%s); MFU is not reported.', m.name, e)
    return None


def _log_batch_hash(workdir: str, step: int, host: dict[str, np.ndarray]) -> None:
  """Appends ``{"step", "process", "sha1"}`` of this process's batch to ``<workdir>/batch_hashes.jsonl``."""
  h = hashlib.sha1()
  for k in sorted(host):
    h.update(np.ascontiguousarray(host[k]).tobytes())
  with open(os.path.join(workdir, 'batch_hashes.jsonl'), 'a') as f:
    f.write(json.dumps({'step': step, 'process': jax.process_index(), 'sha1': h.hexdigest()}) + '\n')


def train_and_evaluate(config, workdir: str) -> TrainState:
  """Trains (or resumes) the model described by ``config`` in ``workdir``.

  Raises:
    ValueError / FileNotFoundError: bad config, missing dataset or VAE weights (one line, before compiling).
    FloatingPointError: a non-finite loss or gradient with ``train.nan_policy='halt'``; the last
      checkpoint written before it stays intact.
  """
  os.makedirs(workdir, exist_ok=True)
  from framedit_jax.vae import load_vae  # pylint: disable=g-import-not-at-top
  from framedit_jax.data.pipeline import make_dataset  # pylint: disable=g-import-not-at-top

  validate_config(config)
  vae = load_vae(config.vae)  # one-line error on missing weights, before compiling
  pixel_space = config.vae.name == 'identity'
  data_it = make_dataset(config, config.data.split, process_index=jax.process_index(),
                         process_count=jax.process_count())
  mesh = mesh_lib.make_mesh(config.mesh)
  validate_config(config, mesh=mesh, vae=vae)

  latent_size = config.data.image_size // vae.downsample
  t_latent = latent_frames(config, vae)
  t_total = t_latent + config.data.use_image_num
  latent_shape = (t_total, latent_size, latent_size, vae.latent_channels)
  model = build_model(config, vae.latent_channels, latent_size, t_latent)
  diffusion = training_diffusion(config)
  optimizer = make_optimizer(config.optim)

  with jax.set_mesh(mesh):
    state, state_shardings = init_state(config, model, optimizer, mesh, latent_shape)
  n_params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(state.params))
  print(f'Model {config.model.name}: {n_params / 1e6:.2f}M parameters, latent {latent_shape}', flush=True)

  ckpt = ckpt_lib.Checkpointer(ckpt_lib.checkpoint_dir(workdir), keep=config.train.keep,
                               keep_period=config.train.keep_period)
  start_step = 0
  if ckpt.latest_step() is not None:
    state, data_state = ckpt.restore(state, state_shardings)
    start_step = int(state.step)
    if data_state:
      data_it.set_state(data_state)
    logging.info('Resumed from %s at step %d.', ckpt.directory, start_step)
    print(f'Resuming from checkpoint at step {start_step} in {ckpt.directory}', flush=True)

  batch_shardings = {'video': mesh_lib.batch_sharding(mesh, 5), 'label': mesh_lib.batch_sharding(mesh, 1)}
  train_step = make_train_step(model, diffusion, optimizer, config, state_shardings=state_shardings,
                               batch_shardings=batch_shardings)
  encode = None
  if not pixel_space and not config.data.use_latents:
    encode = jax.jit(lambda v, k: vae.encode_video(v, key=k, sample=True))

  num_steps = config.train.num_steps
  writer = metrics_lib.create_writer(workdir)
  progress = metrics_lib.Progress(num_steps, start_step, config, writer,
                                  flops_per_step=_train_flops(config, latent_shape),
                                  peak_flops=config.train.get('peak_tflops', 0.0) * 1e12 or None)
  sample_key = jax.random.PRNGKey(config.seed + 1)
  sample_diffusion = sampling.sampling_diffusion(config)
  sampler_cache: dict[Any, Any] = {}

  last_saved = [start_step if ckpt.latest_step() is not None else None]

  def save(step: int):
    if last_saved[0] == step:
      return
    ckpt.save(step, state, data_it.get_state(), config)
    last_saved[0] = step

  def make_samples(step: int):
    n = int(config.sample.num_samples)
    labels = None
    if config.model.num_classes > 0:
      labels = np.arange(n) % config.model.num_classes
    shape = (n,) + latent_shape
    if shape not in sampler_cache:
      sampler_cache[shape] = sampling.make_sampler(model, sample_diffusion, config, shape)
    with jax.set_mesh(mesh):
      videos = sampling.generate(model, state.ema_params, sample_diffusion, config, sample_key, n,
                                 latent_shape=latent_shape, labels=labels,
                                 vae=None if pixel_space else vae, sampler=sampler_cache[shape])
    videos = videos[:, :config.data.num_frames]  # image-joint frames are not part of the video
    out_dir = os.path.join(workdir, 'samples')
    paths = [sampling.write_mp4(os.path.join(out_dir, f'step_{step:08d}_{i:02d}.mp4'), v, config.sample.fps)
             for i, v in enumerate(videos)]
    sampling.write_mp4(os.path.join(out_dir, f'step_{step:08d}_grid.mp4'),
                       sampling.video_grid(videos), config.sample.fps)
    writer.write_images(step, {'samples/first_frames': sampling.to_uint8(videos[:, 0])})
    print(f'Wrote {len(paths)} sample videos to {out_dir}', flush=True)
    return paths

  fvd_state: dict[str, Any] = {}

  def periodic_fvd(step: int) -> float:
    """A small FVD (I3D, StyleGAN-V features) of ``train.fvd_num_videos`` EMA samples vs real clips."""
    from framedit_jax.eval.fvd import I3DFeatureExtractor, fvd_from_arrays  # pylint: disable=g-import-not-at-top
    n = int(config.train.fvd_num_videos)
    if not fvd_state:
      real_config = config.copy_and_resolve_references()
      with real_config.unlocked():
        real_config.seed = config.seed + 7919  # its own clip stream; the training iterator is untouched
      real_it = make_dataset(real_config, config.data.split, process_index=jax.process_index(),
                             process_count=jax.process_count())
      real = []
      while sum(len(r) for r in real) < n:
        real.append(np.asarray(next(real_it)['video'])[:, :config.data.num_frames])
      fvd_state['real'] = np.concatenate(real)[:n]
      fvd_state['extractor'] = I3DFeatureExtractor()
    bs = int(config.sample.batch_size)
    shape = (bs,) + latent_shape
    if shape not in sampler_cache:
      sampler_cache[shape] = sampling.make_sampler(model, sample_diffusion, config, shape)
    fake = []
    for i in range(0, n, bs):
      labels = (np.arange(i, i + bs) % config.model.num_classes) if config.model.num_classes > 0 else None
      with jax.set_mesh(mesh):
        fake.append(sampling.generate(model, state.ema_params, sample_diffusion, config,
                                      jax.random.fold_in(sample_key, 10_000 + i), bs, latent_shape=latent_shape,
                                      labels=labels, vae=None if pixel_space else vae, sampler=sampler_cache[shape]))
    fake = np.concatenate(fake)[:n, :config.data.num_frames]
    return float(fvd_from_arrays(fvd_state['real'], fake, fvd_state['extractor']))

  step = start_step
  pending = None  # metrics of the previous step, checked one step late to keep the device busy
  try:
    with _StopSignal() as stop:
      while step < num_steps:
        host = _host_batch(next(data_it))
        if config.train.log_batch_hashes:
          _log_batch_hash(workdir, step + 1, host)
        with jax.set_mesh(mesh):
          batch = mesh_lib.host_to_global(host, mesh)
          if encode is not None:
            batch['video'] = encode(batch['video'], jax.random.fold_in(sample_key, step))
          state, metrics = train_step(state, batch)
        if pending is not None:
          progress.check_and_log(*pending)
        pending = (step + 1, metrics)
        step += 1
        if step % config.train.ckpt_every == 0 or step == num_steps:
          progress.check_and_log(*pending)  # never save a non-finite state
          pending = None
          save(step)
        if config.train.sample_every and step % config.train.sample_every == 0 and step < num_steps:
          make_samples(step)
        if config.train.fvd_every and step % config.train.fvd_every == 0:
          fvd_value = periodic_fvd(step)
          writer.write_scalars(step, {'eval/fvd': fvd_value})
          print(f'step {step}: FVD({config.train.fvd_num_videos} samples vs real) = {fvd_value:.2f}', flush=True)
        if stop.received is not None or ckpt.reached_preemption(step):
          if pending is not None:
            progress.check_and_log(*pending)
          save(step)
          ckpt.wait()
          print(f'Stopped by signal {stop.received} at step {step}; checkpoint saved.', flush=True)
          ckpt.close()
          writer.flush()
          return state
      if pending is not None:
        progress.check_and_log(*pending)
  except BaseException:
    ckpt.wait()  # let an in-flight save of a good state finish
    raise

  ckpt.wait()
  if start_step < num_steps or not os.path.isdir(os.path.join(workdir, 'samples')):
    make_samples(step)
  ckpt.close()
  writer.flush()
  return state

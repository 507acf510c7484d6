"""``train_dpvae(config, workdir)``: train (or resume) a DP-VAE on the project's video clips.

Order of work: validate `config.dpvae` / `config.data` (one-line errors before compiling), open the dataset
(`framedit_jax.data.make_dataset`, the diffusion trainer's pipeline), build the frozen 2D VAE (weights file or
random-weight), the DP-VAE and the discriminator, restore `<workdir>/checkpoints` if any (state + data position:
exact resume), loop, then write reconstruction mp4s of held-out clips to `<workdir>/recon` and the export
directory `<workdir>/dpvae_export` that `config.vae.name='dpvae'` loads.
"""

from __future__ import annotations

import functools
import os
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from framedit_jax.train import checkpoint as ckpt_lib
from framedit_jax.train import dpvae_step
from framedit_jax.train import metrics as metrics_lib
from framedit_jax.train.generate import write_mp4
from framedit_jax.vae import dpvae as dp
from framedit_jax.vae import dpvae_layers
from framedit_jax.vae import dpvae_video
from framedit_jax.vae.autoencoder_kl import AutoencoderKL


def _arch(cfg) -> dict:
  return dict(block_out_channels=tuple(cfg.block_out_channels), layers_per_block=int(cfg.layers_per_block),
              latent_channels=int(cfg.latent_channels), norm_num_groups=int(cfg.norm_num_groups))


def validate(config) -> None:
  """One-line ValueError for an inconsistent `config.dpvae` / `config.data`."""
  c, d = config.dpvae, config.data
  n_levels = len(c.block_out_channels)
  dp.num_temporal_stages(int(c.t_g), n_levels)
  f = 2 ** (n_levels - 1)
  if int(d.num_frames) % int(c.t_g):
    raise ValueError(f'config.data.num_frames={d.num_frames} must be a multiple of config.dpvae.t_g={c.t_g}.')
  if int(d.image_size) % f:
    raise ValueError(f'config.data.image_size={d.image_size} must be a multiple of the spatial factor {f}.')
  for ch in c.block_out_channels:
    if ch % int(c.norm_num_groups):
      raise ValueError(f'config.dpvae.block_out_channels={tuple(c.block_out_channels)} must be multiples of '
                       f'config.dpvae.norm_num_groups={c.norm_num_groups}.')
  if int(d.num_frames) < 4 or int(d.image_size) < 16:
    raise ValueError('The 3D discriminator needs config.data.num_frames >= 4 and image_size >= 16.')


def build_key_vae(config):
  """The frozen 2D VAE (E_k, D_k): `(module, params, kwargs)`.

  `config.dpvae.key_vae_checkpoint` = SD VAE weights (same formats as `config.vae.checkpoint`), or None for a
  random-weight `AutoencoderKL` with the DP-VAE's architecture (seed `config.dpvae.key_vae_seed`).
  """
  from framedit_jax.vae import checkpoint as vae_ckpt  # pylint: disable=g-import-not-at-top
  from framedit_jax.vae import loader  # pylint: disable=g-import-not-at-top
  c = config.dpvae
  path = c.get('key_vae_checkpoint')
  if path:
    if not os.path.exists(path):
      raise FileNotFoundError(f'config.dpvae.key_vae_checkpoint={path} does not exist; {loader.WHERE_TO_GET}.')
    if vae_ckpt.is_converted_dir(path):
      params, kwargs = vae_ckpt.restore_vae_params(path)
    else:
      params, kwargs = loader.load_torch_weights(path, int(c.get('key_vae_norm_num_groups', 32)))
    return AutoencoderKL(**kwargs), jax.device_put(params), dict(kwargs)
  kwargs = _arch(c)
  module = AutoencoderKL(**kwargs)
  size = 2 ** (len(kwargs['block_out_channels']) - 1)
  params = dp.jitted_init(module, (1, size, size, 3))(jax.random.key(int(c.key_vae_seed)))
  return module, params, kwargs


@functools.lru_cache(maxsize=4)
def _compiled_step(module, key_module, disc, optim_items, weights, disc_start, perceptual_fn):
  g_tx, d_tx = dpvae_step.make_optimizers(_Attrs(dict(optim_items)))
  step = functools.partial(dpvae_step.train_step, module=module, key_module=key_module, disc=disc, g_tx=g_tx,
                           d_tx=d_tx, weights=weights, disc_start=disc_start, perceptual_fn=perceptual_fn)
  return jax.jit(step, donate_argnums=0), g_tx, d_tx


class _Attrs:
  def __init__(self, d):
    self.__dict__.update(d)


def held_out_clips(config, n: int) -> np.ndarray:
  """`n` held-out clips `(n, T, H, W, 3)` of `config.dpvae.eval_split`, own seed (training stream untouched)."""
  from framedit_jax.data.pipeline import make_dataset  # pylint: disable=g-import-not-at-top
  c = config.copy_and_resolve_references()
  with c.unlocked():
    c.seed = int(config.seed) + 7919
  it = make_dataset(c, config.dpvae.get('eval_split', 'test'))
  clips = []
  while sum(len(x) for x in clips) < n:
    clips.append(np.asarray(next(it)['video'], np.float32))
  it.close()
  return np.concatenate(clips)[:n]


def write_reconstructions(codec, clips: np.ndarray, out_dir: str, step: int, fps: int = 8) -> list[str]:
  """Writes `<out_dir>/step_XXXXXXXX_NN.mp4`: each clip side by side with its DP-VAE reconstruction."""
  recon = np.clip(np.asarray(codec.decode_video(codec.encode_video(clips, sample=False))), -1, 1)
  return [write_mp4(os.path.join(out_dir, f'step_{step:08d}_{i:02d}.mp4'), np.concatenate([x, y], axis=2), fps)
          for i, (x, y) in enumerate(zip(clips, recon))]


def train_dpvae(config, workdir: str, perceptual_fn: Optional[Callable] = None):
  """Trains (or resumes) the DP-VAE of `config.dpvae` on `config.data` clips in `workdir`.

  Args:
    config: ConfigDict with `seed`, `data.*` (as diffusion training), `dpvae.*` (configs/dpvae_demo.py),
      `train.{num_steps, log_every, ckpt_every, keep}`, `sample.fps`.
    workdir: checkpoints, TensorBoard scalars, `recon/*.mp4`, `dpvae_export/`.
    perceptual_fn: optional `(x, y) -> (N,)` on images `(N, H, W, 3)` in [-1, 1] (LPIPS); None = no LPIPS term.
  Returns:
    (final `DPVAEState`, list of (step, recon loss) of every step run).
  Raises:
    ValueError / FileNotFoundError: bad config or missing files (before compiling). FloatingPointError: a
    non-finite loss (the last checkpoint stays intact).
  """
  from framedit_jax.data.pipeline import make_dataset  # pylint: disable=g-import-not-at-top
  validate(config)
  os.makedirs(workdir, exist_ok=True)
  c = config.dpvae
  data_it = make_dataset(config, config.data.split)
  key_module, key_params, key_kwargs = build_key_vae(config)
  kwargs = dict(_arch(c), t_g=int(c.t_g))
  if key_kwargs['latent_channels'] != kwargs['latent_channels'] or (
      len(key_kwargs['block_out_channels']) != len(kwargs['block_out_channels'])):
    raise ValueError('config.dpvae latent_channels / number of levels must match the key-frame 2D VAE '
                     f'({key_kwargs["latent_channels"]} channels, {len(key_kwargs["block_out_channels"])} levels).')
  module = dp.DPVAE(**kwargs)
  disc = dpvae_layers.PatchDiscriminator3D(int(c.disc_channels), int(c.disc_layers))
  if perceptual_fn is None:
    print('DP-VAE: no LPIPS backbone weights given, training without the LPIPS term.', flush=True)
  weights = dpvae_step.Weights(**{k: float(v) for k, v in c.weights.items()})
  step_fn, g_tx, d_tx = _compiled_step(module, key_module, disc, tuple(sorted(c.optim.items())), weights,
                                       int(c.disc_start), perceptual_fn)

  rng = jax.random.key(int(config.seed))
  k_g, k_d, k_state = jax.random.split(rng, 3)
  size, t = int(config.data.image_size), int(config.data.num_frames)
  g_params = dp.init_params(module, k_g, size, t)
  if c.init_from_key:
    g_params, n_copied = dp.copy_2d_params(g_params, key_params)
    print(f'DP-VAE: {n_copied} 2D tensors of E_r/D initialised from the key-frame VAE.', flush=True)
  d_params = dp.jitted_init(disc, (1, t, size, size, 3))(k_d)
  state = dpvae_step.create_state(g_params, d_params, g_tx, d_tx, k_state)
  n_params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(g_params))
  f = module.downsample
  print(f'DP-VAE: {n_params / 1e6:.3f}M trainable parameters; clip {(t, size, size, 3)} -> latent '
        f'{(t // int(c.t_g), size // f, size // f, kwargs["latent_channels"])}', flush=True)

  ckpt = ckpt_lib.Checkpointer(ckpt_lib.checkpoint_dir(workdir), keep=int(config.train.keep))
  start = 0
  if ckpt.latest_step() is not None:
    state, data_state = ckpt.restore(state)
    start = int(state.step)
    if data_state:
      data_it.set_state(data_state)
    print(f'Resuming from checkpoint at step {start} in {ckpt.directory}', flush=True)

  writer = metrics_lib.create_writer(workdir)
  num_steps, log_every = int(config.train.num_steps), max(1, int(config.train.log_every))
  history, acc = [], {}
  step = start
  try:
    while step < num_steps:
      video = jnp.asarray(np.asarray(next(data_it)['video'], np.float32))
      state, m = step_fn(state, key_params, video)
      m = {k: float(v) for k, v in jax.device_get(m).items()}
      step += 1
      if m['finite'] < 1.0:
        raise FloatingPointError(f'Non-finite DP-VAE loss at step {step} ({m}); the last checkpoint is intact; '
                                 'lower config.dpvae.optim.lr.')
      history.append((step, m['recon']))
      for k, v in m.items():
        acc.setdefault(k, []).append(v)
      if step % log_every == 0 or step == num_steps:
        scalars = {f'train/{k}': float(np.mean(v)) for k, v in acc.items()}
        acc = {}
        writer.write_scalars(step, scalars)
        print(f'step {step}/{num_steps} | loss {scalars["train/loss"]:.4f} | recon {scalars["train/recon"]:.4f}'
              f' | reg {scalars["train/reg"]:.4f} | g_adv {scalars["train/g_adv"]:.3f}'
              f' | d_loss {scalars["train/d_loss"]:.3f}', flush=True)
      if step % int(config.train.ckpt_every) == 0 or step == num_steps:
        ckpt.save(step, state, data_it.get_state(), config)
  finally:
    ckpt.wait()
    data_it.close()

  codec = dpvae_video.DPVideoVAE(module, state.g_params, key_module, key_params,
                                 config.vae.get('scale_factor', 0.18215))
  n_clips = int(c.get('num_recon_videos', 2))
  if n_clips:
    paths = write_reconstructions(codec, held_out_clips(config, n_clips), os.path.join(workdir, 'recon'), step,
                                  int(config.sample.fps))
    print(f'Wrote {len(paths)} reconstruction videos (input | DP-VAE) to {os.path.dirname(paths[0])}', flush=True)
  export = os.path.join(workdir, 'dpvae_export')
  dpvae_video.save_dpvae(export, jax.device_get(state.g_params), kwargs, jax.device_get(key_params), key_kwargs)
  print(f'DP-VAE export (config.vae.name=dpvae, config.vae.checkpoint=...): {export}', flush=True)
  ckpt.close()
  writer.flush()
  return state, history

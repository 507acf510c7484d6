"""The DP-VAE (VideoDiT §3.1, distribution-preserving 3D VAE): `config.task='dpvae'`, `configs/dpvae_demo.py`.

Batch source: the diffusion trainer's Grain clip pipeline (`framedit_jax.data.pipeline`), sharded by process.
State: `dpvae_step.DPVAEState` (E_r + D params and AdamW state, 3D patch discriminator params and Adam state,
rng). The frozen 2D key-frame VAE (E_k, D_k) is the step's constant input, sharded like the state: SD weights
(`dpvae.key_vae_checkpoint`) or a random-weight AutoencoderKL of the DP-VAE's architecture; with
`dpvae.init_from_key` the 2D blocks of E_r / D start as a copy of it (paper §A.1).
Step: `dpvae_step.train_step` (generator then discriminator, hinge loss from `dpvae.disc_start`; LPIPS when
`dpvae.lpips_weights` is given).
Samples: reconstruction mp4s of held-out clips (input | DP-VAE) in `<workdir>/recon`.
Export: `<workdir>/dpvae_export`, which `config.vae.name='dpvae'`, `config.vae.checkpoint=...` loads.
"""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

from framedit_jax.train import dpvae_step
from framedit_jax.train.generate import write_mp4
from framedit_jax.train.tasks.base import Task, host_tree
from framedit_jax.vae import dpvae as dp
from framedit_jax.vae import dpvae_layers
from framedit_jax.vae import dpvae_video
from framedit_jax.vae.autoencoder_kl import AutoencoderKL

EXPORT_DIR = 'dpvae_export'


def _arch(cfg) -> dict:
  return dict(block_out_channels=tuple(cfg.block_out_channels), layers_per_block=int(cfg.layers_per_block),
              latent_channels=int(cfg.latent_channels), norm_num_groups=int(cfg.norm_num_groups))


def build_key_vae(config):
  """The frozen 2D VAE (E_k, D_k): `(module, params, kwargs)`.

  `config.dpvae.key_vae_checkpoint` = SD VAE weights (same formats as `config.vae.checkpoint`), or None for a
  random-weight `AutoencoderKL` with the DP-VAE's architecture (seed `config.dpvae.key_vae_seed`).
  Raises:
    FileNotFoundError: the checkpoint does not exist (one line).
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
    return AutoencoderKL(**kwargs), jax.device_get(params), dict(kwargs)
  kwargs = _arch(c)
  module = AutoencoderKL(**kwargs)
  size = 2 ** (len(kwargs['block_out_channels']) - 1)
  params = dp.jitted_init(module, (1, size, size, 3))(jax.random.key(int(c.key_vae_seed)))
  return module, params, kwargs


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


class DPVAETask(Task):
  """DP-VAE training (see the module docstring)."""

  name = 'dpvae'
  log_keys = ('loss', 'recon', 'reg', 'g_adv', 'd_loss')
  host_offload_fields = ('g_opt', 'd_opt')

  def __init__(self, config, mesh, workdir: str | None = None):
    del workdir
    super().__init__(config, mesh)
    c = config.dpvae
    self.key_module, self._key_params, self.key_kwargs = build_key_vae(config)
    self.kwargs = dict(_arch(c), t_g=int(c.t_g))
    if self.key_kwargs['latent_channels'] != self.kwargs['latent_channels'] or (
        len(self.key_kwargs['block_out_channels']) != len(self.kwargs['block_out_channels'])):
      raise ValueError('config.dpvae latent_channels / number of levels must match the key-frame 2D VAE '
                       f'({self.key_kwargs["latent_channels"]} channels, '
                       f'{len(self.key_kwargs["block_out_channels"])} levels).')
    self.module = dp.DPVAE(**self.kwargs)
    self.disc = dpvae_layers.PatchDiscriminator3D(int(c.disc_channels), int(c.disc_layers))
    self.g_tx, self.d_tx = dpvae_step.make_optimizers(c.optim)
    self.weights = dpvae_step.Weights(**{k: float(v) for k, v in c.weights.items()})
    self.perceptual_fn = None
    if c.get('lpips_weights', None):
      from framedit_jax.eval.lpips import make_lpips_fn  # pylint: disable=g-import-not-at-top
      self.perceptual_fn = make_lpips_fn(c.lpips_weights)
    else:
      print('DP-VAE: no LPIPS backbone weights given (config.dpvae.lpips_weights), training without the LPIPS '
            'term.', flush=True)

  # ------------------------------------------------------------------ data
  def dataset(self, split, *, process_index=0, process_count=1, config=None):
    from framedit_jax.data.pipeline import make_dataset  # pylint: disable=g-import-not-at-top
    return make_dataset(config or self.config, split, process_index=process_index, process_count=process_count)

  def host_batch(self, raw, step):
    del step
    return {'video': np.asarray(raw['video'], np.float32)}

  def batch_spec(self):
    d = self.config.data
    shape = (int(d.global_batch_size), int(d.num_frames), int(d.image_size), int(d.image_size), 3)
    return {'video': jax.ShapeDtypeStruct(shape, jnp.float32)}

  # ------------------------------------------------------------------ state
  def init_state(self, rng):
    k_g, k_d, k_state = jax.random.split(rng, 3)
    size, t = int(self.config.data.image_size), int(self.config.data.num_frames)
    g_params = self.module.init(k_g, jnp.zeros((1, t, size, size, 3), jnp.float32))['params']
    d_params = self.disc.init(k_d, jnp.zeros((1, t, size, size, 3), jnp.float32))['params']
    return dpvae_step.create_state(g_params, d_params, self.g_tx, self.d_tx, k_state)

  def load_init(self, state, shardings):
    if not self.config.dpvae.init_from_key:
      return state
    g_params, n_copied = dp.copy_2d_params(host_tree(state.g_params), self._key_params)
    print(f'DP-VAE: {n_copied} 2D tensors of E_r/D initialised from the key-frame VAE.', flush=True)
    g_params = jax.tree.map(lambda p, ref: np.asarray(p, ref.dtype), g_params, state.g_params)
    return state.replace(g_params=jax.device_put(g_params, shardings.g_params))

  def frozen(self):
    return jax.tree.map(jnp.asarray, self._key_params)

  def num_params(self, state):
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(state.g_params))

  def describe(self, state):
    t, size, f = int(self.config.data.num_frames), int(self.config.data.image_size), self.module.downsample
    return (f'DP-VAE: {self.num_params(state) / 1e6:.3f}M trainable parameters; clip {(t, size, size, 3)} -> '
            f'latent {(t // self.kwargs["t_g"], size // f, size // f, self.kwargs["latent_channels"])}')

  def eval_params(self, state, frozen=None):
    del frozen
    return state.g_params

  # ------------------------------------------------------------------ step
  def step_fn(self):
    from framedit_jax.train.step import keep_if_finite  # pylint: disable=g-import-not-at-top
    step = functools.partial(dpvae_step.train_step, module=self.module, key_module=self.key_module,
                             disc=self.disc, g_tx=self.g_tx, d_tx=self.d_tx, weights=self.weights,
                             disc_start=int(self.config.dpvae.disc_start), perceptual_fn=self.perceptual_fn,
                             grad_accum_steps=int(self.config.optim.grad_accum_steps))
    skip = self.config.train.nan_policy == 'skip'

    def train_step(state, batch, frozen):
      new, metrics = step(state, frozen, batch['video'])
      if skip:
        new = keep_if_finite(metrics['finite'] > 0, new, state, ('g_params', 'g_opt', 'd_params', 'd_opt'))
      return new, metrics

    return train_step

  # ------------------------------------------------------------------ outputs
  def codec(self, state, frozen):
    return dpvae_video.DPVideoVAE(self.module, host_tree(state.g_params), self.key_module, host_tree(frozen),
                                  self.config.vae.get('scale_factor', 0.18215))

  def samples(self, state, step, workdir, writer, frozen=None):
    """Reconstructions of `dpvae.num_recon_videos` held-out clips, input | DP-VAE side by side."""
    del writer
    n = int(self.config.dpvae.get('num_recon_videos', 2))
    if not n:
      return []
    codec = self.codec(state, frozen)
    if jax.process_index() != 0:
      return []
    paths = write_reconstructions(codec, held_out_clips(self.config, n), os.path.join(workdir, 'recon'), step,
                                  int(self.config.sample.fps))
    print(f'Wrote {len(paths)} reconstruction videos (input | DP-VAE) to {os.path.dirname(paths[0])}', flush=True)
    return paths

  def export(self, state, workdir, frozen=None):
    g_params, key_params = host_tree(state.g_params), host_tree(frozen)
    if jax.process_index() != 0:
      return
    out = os.path.join(workdir, EXPORT_DIR)
    dpvae_video.save_dpvae(out, g_params, self.kwargs, key_params, self.key_kwargs)
    print(f'DP-VAE export (config.vae.name=dpvae, config.vae.checkpoint=...): {out}', flush=True)

"""Config checks that fail fast with one-line errors, before anything is compiled."""

from __future__ import annotations

import re

import jax


def patch_size_from_name(name: str) -> int | None:
  """The patch size in an official model name (``'FrameDiTH-XL/128-512/2-concat'`` -> 2), or None."""
  m = re.search(r'/(\d+)(?:-[A-Za-z_]+)*$', name)
  return int(m.group(1)) if m else None


def validate_config(config, *, mesh=None, vae=None) -> None:
  """Raises ``ValueError`` naming the offending field for invalid combinations.

  Checked: learn_sigma agreement, grad-accumulation and process divisibility of the batch, and (when
  ``mesh``/``vae`` are given) batch vs data axes, ``num_frames`` vs ``mesh.frame``, image size vs VAE
  downsampling and patch size.
  """
  d, m, o = config.data, config.model, config.optim
  if bool(config.diffusion.learn_sigma) != bool(m.learn_sigma):
    raise ValueError(f'config.diffusion.learn_sigma={config.diffusion.learn_sigma} must equal '
                     f'config.model.learn_sigma={m.learn_sigma}.')
  if config.train.nan_policy not in ('halt', 'skip'):
    raise ValueError(f"config.train.nan_policy must be 'halt' or 'skip', got {config.train.nan_policy!r}.")
  if config.train.get('fvd_every', 0) and int(d.num_frames) < 9:
    raise ValueError(f'config.train.fvd_every needs config.data.num_frames >= 9 (I3D), got {d.num_frames}; '
                     'set fvd_every=0 or use longer clips.')
  b = int(d.global_batch_size)
  if b <= 0 or b % jax.process_count():
    raise ValueError(f'config.data.global_batch_size={b} must be a positive multiple of the process count '
                     f'{jax.process_count()}.')
  if b % int(o.grad_accum_steps):
    raise ValueError(f'config.data.global_batch_size={b} must be divisible by '
                     f'config.optim.grad_accum_steps={o.grad_accum_steps}.')
  if mesh is not None:
    batch_devices = mesh.shape['data'] * mesh.shape['fsdp']
    if (b // int(o.grad_accum_steps)) % batch_devices:
      raise ValueError(f'config.data.global_batch_size/grad_accum_steps={b // int(o.grad_accum_steps)} must be '
                       f'divisible by mesh data*fsdp={batch_devices}; change the batch or config.mesh.')
    if int(d.num_frames) % mesh.shape['frame']:
      raise ValueError(f'config.data.num_frames={d.num_frames} must be divisible by config.mesh.frame='
                       f'{mesh.shape["frame"]}.')
  if vae is not None:
    t_g = int(getattr(vae, 'temporal_downsample', 1))
    if t_g > 1 and (int(d.num_frames) % t_g or int(d.get('use_image_num', 0) or 0)):
      raise ValueError(f'config.vae.name={config.vae.name!r} compresses time by t_g={t_g}: config.data.num_frames='
                       f'{d.num_frames} must be a multiple of {t_g} and data.use_image_num must be 0.')
    if int(d.image_size) % vae.downsample:
      raise ValueError(f'config.data.image_size={d.image_size} must be divisible by the VAE downsampling '
                       f'factor {vae.downsample} (config.vae.name={config.vae.name!r}).')
    latent = int(d.image_size) // vae.downsample
    p = patch_size_from_name(m.name)
    if p and latent % p:
      raise ValueError(f'Latent size {latent} (config.data.image_size={d.image_size} / {vae.downsample}) is not '
                       f'divisible by the patch size {p} of config.model.name={m.name!r}.')

"""Config checks that fail fast with one-line errors, before anything is compiled.

`check_fields(config)` checks every field on its own (range, choice, type) and the model name;
`validate_config(config, mesh=, vae=)` adds the cross-field checks. Every error is one `ValueError` line that
names the field (`config.optim.lr=-1.0: ...`) and says how to fix it.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, Callable

import jax


def patch_size_from_name(name: str) -> int | None:
  """The patch size in an official model name (``'FrameDiTH-XL/128-512/2-concat'`` -> 2), or None."""
  m = re.search(r'/(\d+)(?:-[A-Za-z_]+)*$', name)
  return int(m.group(1)) if m else None


_DTYPES = ('float32', 'bfloat16', 'float16')
_POS_INT = ('an integer >= 1', lambda v: _is_int(v) and v >= 1)
_NONNEG_INT = ('an integer >= 0', lambda v: _is_int(v) and v >= 0)
_POS = ('a number > 0', lambda v: _is_num(v) and v > 0)
_NONNEG = ('a number >= 0', lambda v: _is_num(v) and v >= 0)
_UNIT = ('a number in [0, 1)', lambda v: _is_num(v) and 0 <= v < 1)
_UNIT_CLOSED = ('a number in [0, 1]', lambda v: _is_num(v) and 0 <= v <= 1)
_MESH_AXIS = ('an integer >= 1, or -1 for all remaining devices', lambda v: _is_int(v) and (v >= 1 or v == -1))


def _is_int(v) -> bool:
  return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
  return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v  # not NaN


def _choice(*options):
  return ('one of ' + ', '.join(repr(o) for o in options), lambda v: v in options)


def _optional(rule):
  what, ok = rule
  return (what + ' (or None)', lambda v: v is None or ok(v))


def _field_rules() -> dict[str, tuple[str, Callable[[Any], bool]]]:
  """Dotted field -> (what a valid value is, predicate). Fields missing from a config are skipped."""
  from framedit_jax.data.clip_recipe import DATASET_RULES, TEMPORAL_MODES  # pylint: disable=g-import-not-at-top
  from framedit_jax.data.transforms import SPATIAL_MODES  # pylint: disable=g-import-not-at-top
  from framedit_jax.models.attention import ATTENTION_KERNELS  # pylint: disable=g-import-not-at-top
  from framedit_jax.models.blocks import REMAT_POLICIES  # pylint: disable=g-import-not-at-top
  dataset = ('one of ' + ', '.join(sorted(DATASET_RULES)) + ' (optionally /<builder config>)',
             lambda v: isinstance(v, str) and v.split('/')[0] in DATASET_RULES)
  return {
      'seed': ('an integer', _is_int),
      'model.num_classes': _NONNEG_INT,
      'model.class_dropout_prob': _UNIT,
      'model.dtype': _choice(*_DTYPES),
      'model.attention_kernel': _choice(*ATTENTION_KERNELS),
      'model.learn_sigma': _choice(True, False),
      'model.remat_policy': _choice('auto', *REMAT_POLICIES),
      'model.scan_blocks': _choice('auto', True, False),
      'model.cpu_kernels': _choice('auto', 'on', 'off'),
      'diffusion.objective': _choice('iddpm', 'rectified_flow'),
      'diffusion.diffusion_steps': _POS_INT,
      'diffusion.noise_schedule': _choice('linear', 'cosine', 'squaredcos_cap_v2'),
      'diffusion.predict': _choice('epsilon', 'x0', 'v'),
      'data.dataset': dataset,
      'data.num_frames': _POS_INT,
      'data.frame_interval': _POS_INT,
      'data.image_size': _POS_INT,
      'data.use_image_num': _NONNEG_INT,
      'data.global_batch_size': _POS_INT,
      'data.prefetch': _NONNEG_INT,
      'data.num_parallel_calls': ('an integer >= 1, or -1 for one per CPU', lambda v: _is_int(v) and v != 0 and v >= -1),
      'data.record_cache_mb': _NONNEG,
      'data.temporal_mode': _optional(_choice(*TEMPORAL_MODES)),
      'data.spatial_mode': _optional(_choice(*SPATIAL_MODES)),
      'vae.name': _choice('sd', 'identity', 'dpvae'),
      'vae.dtype': _choice(*_DTYPES),
      'vae.scale_factor': _POS,
      'vae.chunk_size': _POS_INT,
      'optim.lr': _POS,
      'optim.weight_decay': _NONNEG,
      'optim.b1': _UNIT,
      'optim.b2': _UNIT,
      'optim.eps': _POS,
      'optim.warmup_steps': _NONNEG_INT,
      'optim.clip_max_norm': _NONNEG,
      'optim.start_clip_iter': _NONNEG_INT,
      'optim.ema_decay': _UNIT_CLOSED,
      'optim.grad_accum_steps': _POS_INT,
      'train.num_steps': _NONNEG_INT,
      'train.log_every': _POS_INT,
      'train.ckpt_every': _POS_INT,
      'train.keep': _POS_INT,
      'train.keep_period': _NONNEG_INT,
      'train.sample_every': _NONNEG_INT,
      'train.fvd_every': _NONNEG_INT,
      'train.fvd_num_videos': ('an integer >= 2', lambda v: _is_int(v) and v >= 2),
      'train.nan_policy': _choice('halt', 'skip'),
      'train.peak_tflops': _NONNEG,
      'sample.sampler': _choice('ddpm', 'ddim'),
      'sample.num_steps': _POS_INT,
      'sample.ddim_eta': _NONNEG,
      'sample.cfg_scale': _NONNEG,
      'sample.num_samples': _POS_INT,
      'sample.batch_size': _POS_INT,
      'sample.fps': _POS_INT,
      'mesh.data': _MESH_AXIS,
      'mesh.fsdp': _MESH_AXIS,
      'mesh.frame': _MESH_AXIS,
  }


def _get(config, path: str):
  node = config
  for part in path.split('.'):
    if part not in node:
      raise KeyError(path)
    node = node[part]
  return node


def check_model_name(name: str) -> None:
  """Raises a one-line ValueError for an unknown ``config.model.name`` (with the closest registered names)."""
  from framedit_jax.models import registry  # pylint: disable=g-import-not-at-top
  names = registry.list_models()
  if name not in names:
    close = difflib.get_close_matches(str(name), names, n=3, cutoff=0.5)
    hint = f'did you mean {", ".join(repr(c) for c in close)}?' if close else 'see framedit_jax.models.list_models().'
    raise ValueError(f'config.model.name={name!r} is not a registered model; {hint}')


def check_fields(config) -> None:
  """Checks each field of ``config`` on its own (see ``_field_rules``) and the model name.

  Raises:
    ValueError: ``config.<field>=<value>: must be <what>.`` for the first invalid field.
  """
  for path, (what, ok) in _field_rules().items():
    try:
      value = _get(config, path)
    except KeyError:
      continue
    if not ok(value):
      raise ValueError(f'config.{path}={value!r}: must be {what}.')
  check_model_name(config.model.name)
  d = config.data
  if d.get('use_latents', False) and not d.get('latents_dir', None):
    raise ValueError('config.data.use_latents=True needs config.data.latents_dir: the folder written by '
                     'launch/prepare_latents.py.')
  if int(config.sample.num_steps) > int(config.diffusion.diffusion_steps):
    raise ValueError(f'config.sample.num_steps={config.sample.num_steps} must be <= '
                     f'config.diffusion.diffusion_steps={config.diffusion.diffusion_steps}.')


def validate_config(config, *, mesh=None, vae=None) -> None:
  """Raises ``ValueError`` naming the offending field for invalid fields and combinations.

  Checked: every field on its own (``check_fields``), learn_sigma agreement, grad-accumulation and process
  divisibility of the batch, and (when ``mesh``/``vae`` are given) batch vs data axes, ``num_frames`` vs
  ``mesh.frame``, image size vs VAE downsampling and patch size.
  """
  check_fields(config)
  d, m, o = config.data, config.model, config.optim
  if bool(config.diffusion.learn_sigma) != bool(m.learn_sigma):
    raise ValueError(f'config.diffusion.learn_sigma={config.diffusion.learn_sigma} must equal '
                     f'config.model.learn_sigma={m.learn_sigma}.')
  from framedit_jax.data.joint import check_joint_config  # pylint: disable=g-import-not-at-top
  check_joint_config(config)  # data.video_prob (joint image-video training)
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

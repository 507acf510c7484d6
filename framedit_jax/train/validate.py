"""The one config schema of every task: checks that fail fast with one-line errors, before anything compiles.

`check_fields(config)` checks that every field exists (a mistyped name gets the closest real one), every field
on its own (range, choice, type, per task) and the model name; `validate_config(config, mesh=, vae=)` adds the
cross-field checks. Every error is one `ValueError` line that names the field (`config.optim.lr=-1.0: ...`)
and says how to fix it. Groups per task (`config.task`):
  * every task: seed, task, data.*, train.*, mesh.*; `vae.*` (the DP-VAE task reads only vae.scale_factor);
  * 'video' and 't2v': model.*, diffusion.* (incl. rf_* for `objective='rectified_flow'`), optim.*, sample.*;
    `sample.sampler` is one of the objective's samplers (IDDPM: ddpm, ddim, and for T2V also euler,
    dpmpp_2m; rectified flow always samples with Euler and ignores it);
  * 't2v' only: text.*, lora.*, optim.ema_update_every, sample.prompts, data.demo_captions;
  * 'dpvae' only: dpvae.* (its own optimizers in dpvae.optim; model.*, diffusion.*, optim.*, sample.* other
    than sample.fps are ignored).
"""

from __future__ import annotations

import difflib
import re
from typing import Any, Callable

import jax

from framedit_jax.parallel.mesh import supports_host_offload


def patch_size_from_name(name: str) -> int | None:
  """The patch size in an official model name (``'FrameDiTH-XL/128-512/2-concat'`` -> 2), or None."""
  m = re.search(r'/(\d+)(?:-[A-Za-z_]+)*$', name)
  return int(m.group(1)) if m else None


_DTYPES = ('float32', 'bfloat16', 'float16')
_VAE_DTYPES = ('float32', 'bfloat16')  # what framedit_jax.vae.loader accepts
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
      'task': _choice('video', 't2v', 'dpvae'),
      'model.num_classes': _NONNEG_INT,
      'model.class_dropout_prob': _UNIT,
      'model.dtype': _choice(*_DTYPES),
      'model.attention_kernel': _choice(*ATTENTION_KERNELS),
      'model.learn_sigma': _choice(True, False),
      'model.remat_policy': _choice('auto', *REMAT_POLICIES),
      'model.scan_blocks': _choice('auto', True, False),
      'model.cpu_kernels': _choice('auto', 'on', 'off'),
      'model.context_parallel': _choice('gather', 'ring', 'ulysses'),
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
      'vae.dtype': _choice(*_VAE_DTYPES),
      'vae.scale_factor': _POS,
      'vae.chunk_size': _POS_INT,
      'optim.lr': _POS,
      'optim.weight_decay': _NONNEG,
      'optim.b1': _UNIT,
      'optim.b2': _UNIT,
      'optim.eps': _POS,
      'optim.warmup_steps': _NONNEG_INT,
      'optim.decay_steps': _NONNEG_INT,
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
      'train.host_offload': _choice(True, False),
      'train.peak_tflops': _NONNEG,
      'sample.num_samples': _POS_INT,
      'sample.batch_size': _POS_INT,
      'sample.fps': _POS_INT,
      'mesh.data': _MESH_AXIS,
      'mesh.fsdp': _MESH_AXIS,
      'mesh.frame': _MESH_AXIS,
      'diffusion.rf_shift': _POS,
      'diffusion.rf_logit_mean': ('a number', _is_num),
      'diffusion.rf_logit_std': _POS,
      'optim.ema_update_every': _POS_INT,
      'text.max_length': _POS_INT,
      'text.dtype': _choice('float32', 'bfloat16'),
      'text.chunk_size': _POS_INT,
      'text.caption_dropout': _UNIT_CLOSED,
      'text.demo': _choice(True, False),
      'text.root': ('a folder path (str)', lambda v: isinstance(v, str)),
      'lora.enabled': _choice(True, False),
      'lora.rank': _POS_INT,
      'lora.alpha': _POS,
      'lora.target_modules': ('a non-empty tuple of Dense names', lambda v: isinstance(v, (tuple, list)) and len(v) > 0
                              and all(isinstance(x, str) for x in v)),
      'dpvae.t_g': _POS_INT,
      'dpvae.block_out_channels': ('a non-empty tuple of integers >= 1', lambda v: isinstance(v, (tuple, list))
                                   and len(v) > 0 and all(_is_int(x) and x >= 1 for x in v)),
      'dpvae.layers_per_block': _POS_INT,
      'dpvae.latent_channels': _POS_INT,
      'dpvae.norm_num_groups': _POS_INT,
      'dpvae.key_vae_seed': ('an integer', _is_int),
      'dpvae.key_vae_norm_num_groups': _POS_INT,
      'dpvae.init_from_key': _choice(True, False),
      'dpvae.disc_channels': _POS_INT,
      'dpvae.disc_layers': _POS_INT,
      'dpvae.disc_start': _NONNEG_INT,
      'dpvae.weights.recon': _NONNEG,
      'dpvae.weights.reg': _NONNEG,
      'dpvae.weights.lpips': _NONNEG,
      'dpvae.weights.adv': _NONNEG,
      'dpvae.optim.lr': _POS,
      'dpvae.optim.b1': _UNIT,
      'dpvae.optim.b2': _UNIT,
      'dpvae.optim.weight_decay': _NONNEG,
      'dpvae.optim.clip_max_norm': _NONNEG,
      'dpvae.optim.disc_lr': _POS,
      'dpvae.optim.disc_b1': _UNIT,
      'dpvae.optim.disc_b2': _UNIT,
      'dpvae.num_recon_videos': _NONNEG_INT,
      'dpvae.eval_num_videos': _POS_INT,
  }


# Fields with no value rule (paths, free strings, switches read as truthy) that are still part of the schema.
_FREE = (
    'model.name', 'model.remat', 'model.init_from', 'diffusion.learn_sigma', 'data.data_dir', 'data.manual_dir',
    'data.split', 'data.video_prob', 'data.use_latents', 'data.latents_dir', 'data.builder_config',
    'data.random_flip', 'data.label_subfolders', 'data.latent_sample', 'data.demo_captions', 'vae.checkpoint',
    'vae.norm_num_groups', 'train.log_batch_hashes', 'sample.sampler', 'sample.clip_denoised', 'sample.prompts',
    'text.cache', 'dpvae.key_vae_checkpoint', 'dpvae.lpips_weights', 'dpvae.eval_split')
# Fields whose rules live with their mechanism: diffusion.samplers.validate_sample_config (against the objective).
_SAMPLER_FIELDS = ('sample.num_steps', 'sample.ddim_eta', 'sample.cfg_scale')
_FREE_GROUPS = ('model.overrides',)  # any keys (get_model / get_t2v_model kwargs)
_TASK_GROUPS = {'text': 't2v', 'lora': 't2v', 'dpvae': 'dpvae'}  # groups only one task reads
_TASK_FIELDS = {'optim.ema_update_every': 't2v', 'sample.prompts': 't2v', 'data.demo_captions': 't2v'}


def _leaves(node, prefix=''):
  for k in node.keys():
    path = f'{prefix}{k}'
    v = node[k]
    if hasattr(v, 'keys') and path not in _FREE_GROUPS:
      yield from _leaves(v, path + '.')
    else:
      yield path


def check_known_fields(config) -> None:
  """Every field of ``config`` is in the schema and read by ``config.task``.

  Raises:
    ValueError: ``config.data.num_framez is not a field; did you mean config.data.num_frames?`` or
      ``config.text is only read by config.task='t2v'``.
  """
  task = str(config.get('task', 'video'))
  known = set(_field_rules()) | set(_FREE) | set(_SAMPLER_FIELDS)
  for path in _leaves(config):
    group = path.split('.')[0]
    if group in _TASK_GROUPS and _TASK_GROUPS[group] != task:
      raise ValueError(f'config.{group} is only read by config.task={_TASK_GROUPS[group]!r} (this config has '
                       f'task={task!r}); remove the group or set config.task.')
    if path in _TASK_FIELDS and _TASK_FIELDS[path] != task:
      raise ValueError(f'config.{path} is only read by config.task={_TASK_FIELDS[path]!r} (this config has '
                       f'task={task!r}); remove it.')
    if path in known or any(path.startswith(g + '.') or path == g for g in _FREE_GROUPS):
      continue
    close = difflib.get_close_matches(path, sorted(known), n=1, cutoff=0.6)
    hint = f'did you mean config.{close[0]}?' if close else 'remove it (see configs/default.py for the fields).'
    raise ValueError(f'config.{path} is not a field; {hint}')


def _get(config, path: str):
  node = config
  for part in path.split('.'):
    if part not in node:
      raise KeyError(path)
    node = node[part]
  return node


def check_model_name(name: str, task: str = 'video') -> None:
  """Raises a one-line ValueError for an unknown ``config.model.name`` (with the closest registered names);
  ``task='t2v'`` checks the text-to-video models (``framedit_jax.models.t2v.T2V_MODELS``)."""
  if task == 't2v':
    from framedit_jax.models.t2v import T2V_MODELS  # pylint: disable=g-import-not-at-top
    names = sorted(T2V_MODELS)
  else:
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
  check_known_fields(config)
  for path, (what, ok) in _field_rules().items():
    try:
      value = _get(config, path)
    except KeyError:
      continue
    if not ok(value):
      raise ValueError(f'config.{path}={value!r}: must be {what}.')
  task = str(config.get('task', 'video'))
  if task != 'dpvae':
    check_model_name(config.model.name, task)
  d = config.data
  if d.get('use_latents', False) and not d.get('latents_dir', None):
    raise ValueError('config.data.use_latents=True needs config.data.latents_dir: the folder written by '
                     'launch/prepare_latents.py.')
  if task != 'dpvae':
    from framedit_jax.diffusion.samplers import validate_sample_config  # pylint: disable=g-import-not-at-top
    validate_sample_config(config)  # sample.{sampler, num_steps, ddim_eta, cfg_scale} against the objective


def validate_config(config, *, mesh=None, vae=None) -> None:
  """Raises ``ValueError`` naming the offending field for invalid fields and combinations.

  Checked: every field on its own (``check_fields``), learn_sigma agreement, grad-accumulation and process
  divisibility of the batch, the task's own rules (T2V: captioned dataset, no frame parallelism; DP-VAE:
  clip vs GoP and levels), and (when ``mesh``/``vae`` are given) batch vs data axes, ``num_frames`` vs
  ``mesh.frame``, image size vs VAE downsampling and patch size.
  """
  check_fields(config)
  d, m, o = config.data, config.model, config.optim
  task = str(config.get('task', 'video'))
  if task == 't2v':
    _check_t2v(config)
  elif task == 'dpvae':
    _check_dpvae(config)
  if bool(config.diffusion.learn_sigma) != bool(m.learn_sigma):
    raise ValueError(f'config.diffusion.learn_sigma={config.diffusion.learn_sigma} must equal '
                     f'config.model.learn_sigma={m.learn_sigma}.')
  from framedit_jax.data.joint import check_joint_config  # pylint: disable=g-import-not-at-top
  check_joint_config(config)  # data.video_prob (joint image-video training)
  if config.train.get('fvd_every', 0) and int(d.num_frames) < 9:
    raise ValueError(f'config.train.fvd_every needs config.data.num_frames >= 9 (I3D), got {d.num_frames}; '
                     'set fvd_every=0 or use longer clips.')
  if 0 < int(o.get('decay_steps', 0)) <= int(o.warmup_steps):
    raise ValueError(f'config.optim.decay_steps={o.decay_steps} must exceed config.optim.warmup_steps='
                     f'{o.warmup_steps} (the cosine ends at decay_steps, warm-up included), or be 0 for a constant lr.')
  b = int(d.global_batch_size)
  if b % jax.process_count():
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
    if config.train.get('host_offload', False) and not supports_host_offload(mesh):
      raise ValueError(f'config.train.host_offload=True needs devices with a pinned_host memory space; '
                       f'{mesh.devices.flat[0].device_kind} has none. Set config.train.host_offload=False.')
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


def _check_t2v(config) -> None:
  d, m = config.data, config.model
  if d.dataset.split('/')[0] != 'text_video_folder':
    raise ValueError(f'config.data.dataset={d.dataset!r}: the t2v task needs captions; use text_video_folder.')
  if int(config.mesh.frame) != 1 or int(d.use_image_num) or float(d.get('video_prob', 1.0)) < 1.0:
    raise ValueError(f'config.mesh.frame={config.mesh.frame}, data.use_image_num={d.use_image_num}, data.video_prob='
                     f'{d.get("video_prob", 1.0)}: the t2v task has neither frame parallelism nor joint image '
                     'training; set them to 1, 0, 1.0 (use mesh.data / mesh.fsdp to scale out).')
  if m.dtype not in ('float32', 'bfloat16'):
    raise ValueError(f'config.model.dtype={m.dtype!r}: T2V models run in float32 or bfloat16.')
  if not config.text.get('demo', False) and not config.text.root and not config.text.get('cache', ''):
    raise ValueError('config.text.root is empty: point it at a folder with tokenizer/ and text_encoder/ (e.g. '
                     'Latte-1), or set config.text.demo=True.')
  if config.text.get('demo', False) and not d.get('demo_captions', ()):
    raise ValueError('config.text.demo=True needs config.data.demo_captions ((clip file, caption), ...).')


def _check_dpvae(config) -> None:
  from framedit_jax.vae import dpvae as dp  # pylint: disable=g-import-not-at-top
  c, d = config.dpvae, config.data
  n_levels = len(c.block_out_channels)
  try:
    dp.num_temporal_stages(int(c.t_g), n_levels)
  except ValueError as e:
    raise ValueError(f'config.dpvae.t_g={c.t_g}: {e}') from None
  f = 2 ** (n_levels - 1)
  if int(d.num_frames) % int(c.t_g):
    raise ValueError(f'config.data.num_frames={d.num_frames} must be a multiple of config.dpvae.t_g={c.t_g}.')
  if int(d.image_size) % f:
    raise ValueError(f'config.data.image_size={d.image_size} must be a multiple of the spatial factor {f} '
                     f'(config.dpvae.block_out_channels has {n_levels} levels).')
  for ch in c.block_out_channels:
    if ch % int(c.norm_num_groups):
      raise ValueError(f'config.dpvae.block_out_channels={tuple(c.block_out_channels)} must be multiples of '
                       f'config.dpvae.norm_num_groups={c.norm_num_groups}.')
  if int(d.num_frames) < 4 or int(d.image_size) < 16:
    raise ValueError(f'config.data.num_frames={d.num_frames}, image_size={d.image_size}: the 3D discriminator '
                     'needs num_frames >= 4 and image_size >= 16.')
  if int(config.mesh.frame) not in (1,):
    raise ValueError(f'config.mesh.frame={config.mesh.frame}: the dpvae task has no frame parallelism; set 1.')
  if int(d.get('use_image_num', 0)) or d.get('use_latents', False):
    raise ValueError('config.data.use_image_num / use_latents: the dpvae task trains on pixel clips only.')

"""Initialise a video model (Latte / FrameDiT-G / FrameDiT-H / DiT3D) from an image DiT (Latte §3.3.4).

What the Latte paper prescribes, and what the official Latte `train.py` does (`--pretrained`: every checkpoint key
whose name exists in the video model is loaded, so video block i takes DiT block i):

  * x_embedder, t_embedder, final_layer: copied from the DiT.
  * spatial blocks (even i): copied from DiT `blocks_i`.
  * spatial position embedding: the DiT's frozen 2-D sin-cos `pos_embed`, replicated over the T frames. Here it is
    a constant of both models (not a parameter): it is checked equal for the grid and reported as 'adapted'.
  * label embedding: the DiT's 1000-class table is dropped; a class-conditional video model gets a zero table.
    A VideoDiT (videodit.md §3.2) given the DiT's num_classes keeps the DiT's table, so it starts as the DiT on
    every frame of a clip of identical frames; it has no temporal embedding to report.
  * temporal blocks (odd i): `temporal_init='dit'` (official name matching) copies every leaf whose path and shape
    match DiT `blocks_i` (Latte: the whole block; FrameDiT-G/H: adaLN and MLP, the Matrix-Attention / fusion
    parameters stay freshly initialised); `temporal_init='fresh'` keeps them all freshly initialised
    (adaLN-Zero, so each temporal block starts as the identity).
  * temporal position embedding: frozen sin-cos of the video model (fresh).

`init_video_params_from_dit` returns the params and a report `{'copied', 'adapted', 'fresh', 'dropped'}` of
'/'-joined param paths (a whole subtree is listed once when all of its leaves share a category).
"""

from __future__ import annotations

from typing import Any, Mapping

import json
import os

import jax
import numpy as np

from framedit_jax.convert.weights import flatten, unflatten
from framedit_jax.models.embeddings import get_2d_sincos_pos_embed

TEMPORAL_INITS = ('dit', 'fresh')


def _group(paths: list[tuple[str, ...]], all_paths: list[tuple[str, ...]]) -> list[str]:
  """Collapses paths to the shortest prefixes whose leaves (among all_paths) are all in `paths`."""
  chosen = set(paths)
  out = []
  for p in sorted(chosen):
    for n in range(1, len(p) + 1):
      pre = p[:n]
      under = [q for q in all_paths if q[:n] == pre]
      if all(q in chosen for q in under):
        out.append('/'.join(pre))
        break
  return sorted(set(out))


def _is_temporal_block(name: str, temporal: str) -> bool:
  return temporal != 'full3d' and int(name.split('_')[1]) % 2 == 1


def check_fit(dit_module: Any, video_module: Any) -> None:
  """Raises a one-line ValueError unless the DiT's sizes fit the video model (hidden, patch, channels, depth)."""
  problems = []
  for field in ('hidden_size', 'patch_size', 'in_channels', 'learn_sigma', 'num_heads', 'mlp_ratio'):
    a, b = getattr(dit_module, field), getattr(video_module, field)
    if a != b:
      problems.append(f'{field}: DiT {a} != video {b}')
  spatial = [i for i in range(video_module.depth) if not _is_temporal_block(f'blocks_{i}', video_module.temporal)]
  if spatial and max(spatial) >= dit_module.depth:
    problems.append(f'the video model needs DiT blocks up to {max(spatial)} but the DiT has depth {dit_module.depth}')
  if problems:
    raise ValueError('init_from_image_dit: the DiT does not fit the video model: ' + '; '.join(problems)
                     + ' (pick the DiT of the same size/patch, e.g. DiT-XL/2 for Latte-XL/2).')


def init_video_params_from_dit(dit_params: Mapping[str, Any], video_params: Mapping[str, Any], video_module: Any,
                               dit_module: Any, temporal_init: str = 'dit', label_init: str = 'zero'
                               ) -> tuple[dict[str, Any], dict[str, Any]]:
  """Video params from image-DiT params, following Latte §3.3.4 and the official Latte `--pretrained` loading.

  Args:
    dit_params: params of `dit_module` (`framedit_jax.models.image_dit.DiT`, e.g. converted from
      `DiT-XL-2-256x256.pt`).
    video_params: freshly initialised params of `video_module` (a `LatteStyleDiT`): the source of fresh leaves.
    video_module: the `LatteStyleDiT`; its hidden_size, patch_size, in/out channels must equal the DiT's.
    dit_module: the `DiT`.
    temporal_init: 'dit' (official: temporal block i takes the DiT block i leaves whose path and shape match) or
      'fresh' (temporal blocks keep their fresh adaLN-Zero init).
    label_init: 'zero' (Latte: the DiT label table is dropped, the video table zero-initialised) or 'dit' (keep
      the DiT table; needs the same num_classes; used by VideoDiT's 2D->3D conversion).

  Returns:
    `(params, report)`: params has exactly video_params' structure (float32 numpy); report maps 'copied',
    'adapted', 'fresh', 'dropped' to lists of param paths / notes, plus 'counts' (number of scalars each).

  Raises:
    ValueError: unknown temporal_init, or an architecture mismatch (hidden size, patch size, channels, depth of
      the DiT below the video model's spatial blocks), listed in one line.
  """
  if temporal_init not in TEMPORAL_INITS:
    raise ValueError(f'temporal_init must be one of {TEMPORAL_INITS}, got {temporal_init!r}.')
  if label_init not in ('zero', 'dit'):
    raise ValueError(f"label_init must be 'zero' or 'dit', got {label_init!r}.")
  check_fit(dit_module, video_module)
  src, dst = flatten(dit_params), flatten(video_params)
  out, copied, fresh = {}, [], []
  for path, leaf in dst.items():
    top = path[0]
    take = None
    if top in ('x_embedder', 't_embedder', 'final_layer'):
      take = path
    elif top.startswith('blocks_'):
      if not _is_temporal_block(top, video_module.temporal) or temporal_init == 'dit':
        take = path
    if top == 'y_embedder' and label_init == 'dit':
      take = path
    elif top == 'y_embedder':
      out[path] = np.zeros(np.shape(leaf), np.float32)  # dropped DiT table, zero-initialised (Latte §3.3.4)
      fresh.append(path)
      continue
    required = top in ('x_embedder', 't_embedder', 'final_layer', 'y_embedder') or (
        top.startswith('blocks_') and not _is_temporal_block(top, video_module.temporal))
    if take is not None and take in src and np.shape(src[take]) == np.shape(leaf):
      out[path] = np.asarray(src[take], np.float32)
      copied.append(path)
    elif required:
      raise ValueError(f'init_from_image_dit: {"/".join(path)} {np.shape(leaf)} has no DiT counterpart of that shape '
                       f'({np.shape(src[take]) if take in src else "absent"}).')
    else:
      out[path] = np.asarray(leaf, np.float32)
      fresh.append(path)

  used = set(copied)
  dropped = [p for p in src if p not in used]
  all_dst = list(dst)
  grid = video_module.input_size // video_module.patch_size
  dit_grid = dit_module.input_size // dit_module.patch_size
  same = grid == dit_grid and np.array_equal(get_2d_sincos_pos_embed(video_module.hidden_size, grid),
                                             get_2d_sincos_pos_embed(dit_module.hidden_size, dit_grid))
  pos_note = (f'pos_embed: the DiT\'s frozen 2-D sin-cos ({dit_grid}x{dit_grid} grid) replicated over '
              f'{video_module.num_frames + video_module.use_image_num} frames'
              + ('' if same else f'; recomputed for the video grid {grid}x{grid}'))
  size = lambda paths: int(sum(np.size(dst[p]) if p in dst else np.size(src[p]) for p in paths))
  from framedit_jax.models.videodit import VideoDiT2Dto3D  # pylint: disable=g-import-not-at-top
  temporal_note = [] if isinstance(video_module, VideoDiT2Dto3D) else [  # VideoDiT has no temporal embedding
      f'temp_embed: frozen 1-D sin-cos over {video_module.num_frames} frames']
  report = dict(
      copied=_group(copied, all_dst),
      adapted=[pos_note],
      fresh=_group(fresh, all_dst) + temporal_note,
      dropped=_group(dropped, list(src)),
      temporal_init=temporal_init,
      counts=dict(copied=size(copied), fresh=size(fresh), dropped=size(dropped)),
  )
  if 'y_embedder' in {p[0] for p in src} and not any(p[0] == 'y_embedder' for p in dst):
    report['adapted'].append('y_embedder: dropped (unconditional video model)')
  elif any(p[0] == 'y_embedder' for p in dst) and label_init == 'zero':
    report['adapted'].append('y_embedder: the DiT table dropped, zero-initialised for the video classes')
  params = jax.tree.map(np.asarray, unflatten(out))
  return params, report


def init_videodit_from_dit(dit_params: Mapping[str, Any], dit_module: Any, video_module: Any,
                           seed: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
  """VideoDiT 2D->3D params from image-DiT params (videodit.md §3.2): every DiT leaf by name (all blocks, the label
  table when num_classes match), the 3D-patchify branch fresh (`proj_3d` zero, so the model starts as the DiT).

  Returns `(params, report)` as `init_video_params_from_dit`.
  """
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  v = video_module
  x = jnp.zeros((1, v.num_frames, v.input_size, v.input_size, v.in_channels), jnp.float32)
  y = jnp.zeros((1,), jnp.int32) if v.num_classes > 0 else None
  fresh = v.init({'params': jax.random.PRNGKey(seed)}, x, jnp.zeros((1,), jnp.int32), y)['params']
  label_init = 'dit' if v.num_classes == dit_module.num_classes else 'zero'
  return init_video_params_from_dit(dit_params, jax.tree.map(np.asarray, fresh), v, dit_module, 'dit', label_init)


def dit_name_for(model_name: str) -> str:
  """The image DiT of the same size and patch as a video model name: 'Latte-XL/2' -> 'DiT-XL/2'."""
  from framedit_jax.models.registry import model_config  # pylint: disable=g-import-not-at-top
  cfg = model_config(model_name)
  size = model_name.split('-', 1)[1].split('/', 1)[0]
  if size == 'M':
    raise ValueError(f'{model_name}: the official DiT has no M size; pass dit_name= (e.g. DiT-B/{cfg["patch_size"]}).')
  return f'DiT-{size}/{cfg["patch_size"]}'


def init_from_dit_state_dict(state_dict: Mapping[str, Any], model_name: str, dit_name: str | None = None,
                             temporal_init: str = 'dit', seed: int = 0, dit_overrides: Mapping[str, Any] | None = None,
                             **overrides: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
  """Official DiT state_dict -> params of `get_model(model_name, **overrides)` initialised from it.

  Args:
    state_dict: official DiT keys (`DiT-XL-2-256x256.pt`), see `framedit_jax.convert.image_dit`.
    model_name: video model, e.g. 'Latte-XL/2', 'FrameDiTG-XL/128-512/2', 'FrameDiTH-XL/128-512/2-concat'.
    dit_name: image DiT name; default `dit_name_for(model_name)`.
    temporal_init: see `init_video_params_from_dit`.
    seed: PRNG seed of the fresh leaves (temporal attention, ...).
    dit_overrides: architecture overrides of the DiT (tests: depth, hidden_size, num_heads).
    **overrides: `get_model` overrides; input_size and in_channels default to the DiT's, num_classes to 0. A
      VideoDiT with the DiT's num_classes keeps the DiT's label table, so it starts as the DiT on every frame.

  Returns:
    `(params, report, overrides used)`; report as in `init_video_params_from_dit`, plus 'dit' and 'model'.
  """
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from framedit_jax.convert.image_dit import convert_dit_state_dict  # pylint: disable=g-import-not-at-top
  from framedit_jax.models import get_model  # pylint: disable=g-import-not-at-top
  from framedit_jax.models.image_dit import get_image_dit  # pylint: disable=g-import-not-at-top
  from framedit_jax.convert.image_dit import infer_dit_overrides  # pylint: disable=g-import-not-at-top
  dit_name = dit_name or dit_name_for(model_name)
  dit_overrides = dict(dit_overrides or {})
  dit_params = convert_dit_state_dict(state_dict, dit_name, **dit_overrides)
  inferred = infer_dit_overrides(state_dict)
  inferred.pop('patch_size', None)
  dit_module = get_image_dit(dit_name, **{**inferred, **dit_overrides})
  arch = {k: v for k, v in dit_overrides.items() if k in ('depth', 'hidden_size', 'num_heads', 'mlp_ratio')}
  used = dict(input_size=dit_module.input_size, in_channels=dit_module.in_channels,
              learn_sigma=dit_module.learn_sigma, num_classes=0, **arch)
  used.update(overrides)
  video = get_model(model_name, **used)
  # VideoDiT 2D->3D (videodit.md §3.2) keeps the DiT's label table when the class counts match
  videodit = model_name.startswith('VideoDiT')
  label_init = 'dit' if videodit and video.num_classes == dit_module.num_classes > 0 else 'zero'
  check_fit(dit_module, video)
  frames = video.num_frames + video.use_image_num
  x = jnp.zeros((1, frames, video.input_size, video.input_size, video.in_channels), jnp.float32)
  y = jnp.zeros((1,), jnp.int32) if video.num_classes > 0 else None
  fresh = video.init({'params': jax.random.PRNGKey(seed)}, x, jnp.zeros((1,), jnp.int32), y)['params']
  params, report = init_video_params_from_dit(dit_params, jax.tree.map(np.asarray, fresh), video, dit_module,
                                              temporal_init, label_init)
  report = dict(dit=dit_name, model=model_name, **report)
  return params, report, used


def write_init_checkpoint(dit: str, model: str, out_dir: str, dit_model: str | None = None, temporal_init: str = 'dit',
                          weights: str = 'ema', seed: int = 0, overrides: Mapping[str, Any] | None = None
                          ) -> tuple[str, dict[str, Any]]:
  """`launch/init_from_image_dit.py`: DiT file -> orbax `{'params'}` + framedit_model.json + init_report.json.

  Args:
    dit: official DiT checkpoint (.pt / .pth / .safetensors). model: video model name. out_dir: new directory.
    dit_model: image DiT name (default `dit_name_for(model)`). temporal_init, seed: see `init_from_dit_state_dict`.
    weights: 'ema' | 'model' for training checkpoints.
    overrides: `get_model` overrides; depth / hidden_size / num_heads / mlp_ratio also apply to the DiT.

  Returns:
    (absolute checkpoint dir, report).

  Raises:
    FileExistsError: out_dir exists. FileNotFoundError / ValueError: see the loaders and converters.
  """
  from framedit_jax.convert import checkpoint_io  # pylint: disable=g-import-not-at-top
  from framedit_jax.convert.image_dit import load_dit_checkpoint  # pylint: disable=g-import-not-at-top
  overrides = dict(overrides or {})
  if os.path.exists(out_dir):
    raise FileExistsError(f'--out {out_dir} already exists; choose a new directory.')
  state_dict = load_dit_checkpoint(dit, weights)
  dit_arch = {k: overrides[k] for k in ('depth', 'hidden_size', 'num_heads', 'mlp_ratio') if k in overrides}
  params, report, used = init_from_dit_state_dict(state_dict, model, dit_model, temporal_init, seed,
                                                  dit_overrides=dit_arch, **overrides)
  path = checkpoint_io.save_params(params, out_dir, model, used, source=os.path.abspath(dit), weights=weights)
  report['source'] = os.path.abspath(dit)
  with open(os.path.join(path, 'init_report.json'), 'w') as f:
    json.dump(report, f, indent=2)
  return path, report

"""Model names -> `LatteStyleDiT` configurations (official registry names, extended to every size and patch).

Grammar (official `models/__init__.py` of minhkhoale/FrameDiT):
  Latte-{S,B,M,L,XL}/{2,4,8}                 LatteIMG-...            Local Factorized (Latte Variant 1)
  DiT3D-{S,B,M,L,XL}/{2,4,8}                                        Full 3D attention
  FrameDiTG-{size}/{64-256,128-512}/{p}[-softmax_u]      FrameDiTGIMG-...   Matrix Attention
  FrameDiTH-{size}/{64-256,128-512}/{p}[-softmax_u]-{concat,gated}  FrameDiTHIMG-...  (FusedMatLatteIMG-... alias)
The `r_qk-r_v` part sets qk_col_dim-v_col_dim, with 64 column heads. IMG names are the same architectures; set
`use_image_num` for image-video joint training.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any

import jax.numpy as jnp

from framedit_jax.models.attention import ATTENTION_KERNELS, U_TYPES
from framedit_jax.models.backbone import LatteStyleDiT
from framedit_jax.models.fusion import FUSE_MODES

# size: (depth, hidden_size, num_heads) -- official Latte / DiT3D / FrameDiT configs.
SIZES = {
    'S': (12, 384, 6),
    'B': (12, 768, 12),
    'M': (12, 1024, 16),
    'L': (24, 1024, 16),
    'XL': (28, 1152, 16),
}
PATCHES = (2, 4, 8)
RANKS = ((64, 256), (128, 512))
NUM_COL_HEADS = 64

# family prefix: (temporal design, has rank part, has fuse part)
FAMILIES = {
    'Latte': ('local', False, False),
    'LatteIMG': ('local', False, False),
    'DiT3D': ('full3d', False, False),
    'FrameDiTG': ('matrix', True, False),
    'FrameDiTGIMG': ('matrix', True, False),
    'FrameDiTH': ('hybrid', True, True),
    'FrameDiTHIMG': ('hybrid', True, True),
    'FusedMatLatteIMG': ('hybrid', True, True),
}

# Overrides any model accepts, and those that only apply to some temporal designs.
_COMMON = ('input_size', 'num_frames', 'in_channels', 'num_classes', 'class_dropout_prob', 'learn_sigma', 'dtype',
           'attention_kernel', 'remat', 'remat_policy', 'scan_blocks', 'cpu_kernels', 'use_image_num', 'depth', 'hidden_size', 'num_heads', 'patch_size',
           'mlp_ratio', 'frame_axis', 'context_parallel')
_MATRIX = ('u_type', 'qk_col_dim', 'v_col_dim', 'num_col_heads')
_HYBRID = ('fuse_mode',)
_DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16, 'float16': jnp.float16}


def _build_registry() -> dict[str, dict[str, Any]]:
  reg = {}
  for family, (temporal, ranked, fused) in FAMILIES.items():
    for size, (depth, hidden, heads) in SIZES.items():
      for p in PATCHES:
        base = dict(temporal=temporal, depth=depth, hidden_size=hidden, num_heads=heads, patch_size=p)
        if not ranked:
          reg[f'{family}-{size}/{p}'] = base
          continue
        for qk, v in RANKS:
          for u_suffix, u_type in (('', 'param'), ('-softmax_u', 'softmax')):
            cfg = dict(base, qk_col_dim=qk, v_col_dim=v, num_col_heads=NUM_COL_HEADS, u_type=u_type)
            stem = f'{family}-{size}/{qk}-{v}/{p}{u_suffix}'
            if not fused:
              reg[stem] = cfg
            else:
              for fuse in ('concat', 'gated'):
                reg[f'{stem}-{fuse}'] = dict(cfg, fuse_mode=fuse)
  return reg


_REGISTRY = _build_registry()


def list_models(prefix: str = '') -> list[str]:
  """All registered model names starting with `prefix`, sorted."""
  from framedit_jax.models import latte_design, videodit  # pylint: disable=g-import-not-at-top
  names = list(_REGISTRY) + videodit.list_videodits() + latte_design.list_latte_designs()
  return sorted(n for n in names if n.startswith(prefix))


def model_config(name: str) -> dict[str, Any]:
  """The `LatteStyleDiT` fields a name fixes (temporal, depth, hidden_size, ...). Raises KeyError with close matches."""
  if name.startswith('VideoDiT-'):  # VideoDiT 2D->3D (models/videodit.py)
    from framedit_jax.models import videodit  # pylint: disable=g-import-not-at-top
    m = videodit.get_videodit(name)
    return dict(temporal='full3d', depth=m.depth, hidden_size=m.hidden_size, num_heads=m.num_heads,
                patch_size=m.patch_size)
  if name.startswith('LatteV'):  # Latte design space (models/latte_design.py)
    from framedit_jax.models import latte_design  # pylint: disable=g-import-not-at-top
    return dict(temporal='local', **latte_design.latte_design_config(name))
  if name not in _REGISTRY:
    close = difflib.get_close_matches(name, list(_REGISTRY), n=5, cutoff=0.6)
    hint = f' Close matches: {", ".join(close)}.' if close else ' See framedit_jax.models.list_models().'
    raise KeyError(f'Unknown model name {name!r}.{hint}')
  return dict(_REGISTRY[name])


def _as_dtype(value: Any) -> Any:
  if isinstance(value, str):
    if value not in _DTYPES:
      raise ValueError(f'dtype must be one of {sorted(_DTYPES)}, got {value!r}.')
    return _DTYPES[value]
  return jnp.dtype(value).type


def get_model(name: str, **overrides: Any) -> LatteStyleDiT:
  """Builds the Flax module for an official model name.

  Args:
    name: e.g. 'Latte-XL/2', 'DiT3D-S/4', 'FrameDiTG-XL/128-512/2', 'FrameDiTH-XL/128-512/2-concat',
      'FrameDiTH-S/64-256/2-softmax_u-gated', 'FrameDiTHIMG-XL/128-512/2-concat' (see `list_models()`).
    **overrides: input_size (latent H = W, default 32), num_frames (16), in_channels (4), num_classes (0 =
      unconditional; > 0 class-conditional with null label = num_classes), class_dropout_prob (0.1), learn_sigma
      (True), dtype ('float32' | 'bfloat16' | jnp dtype; compute dtype, params stay float32), attention_kernel
      ('einsum' | 'cudnn' | 'xla'), remat (False), remat_policy ('none'), scan_blocks (False), cpu_kernels (False; XLA CPU backward kernels, framedit_jax.models.cpu), use_image_num (0), frame_axis (None; mesh axis for frame
      parallelism, see `framedit_jax.parallel.frame_parallel`), context_parallel ('gather' | 'ring' | 'ulysses'); FrameDiT only: u_type ('param' | 'softmax' |
      'identity'), qk_col_dim, v_col_dim, num_col_heads; FrameDiT-H only: fuse_mode ('concat' | 'gated' | 'sum' |
      'local'); architecture (for tests): depth, hidden_size, num_heads, patch_size, mlp_ratio.

  Returns:
    A `LatteStyleDiT` (flax.linen.Module).

  Raises:
    KeyError: unknown name (lists close matches). TypeError: unknown or inapplicable override. ValueError: bad value.
  """
  if name.startswith('VideoDiT-'):  # VideoDiT 2D->3D (models/videodit.py)
    from framedit_jax.models import videodit  # pylint: disable=g-import-not-at-top
    overrides.pop('scan_blocks', None)
    return videodit.get_videodit(name, **overrides)
  if name.startswith('LatteV'):  # Latte design space (models/latte_design.py)
    from framedit_jax.models import latte_design  # pylint: disable=g-import-not-at-top
    return latte_design.get_latte_design(name, **overrides)
  cfg = model_config(name)
  allowed = set(_COMMON)
  if cfg['temporal'] in ('matrix', 'hybrid'):
    allowed |= set(_MATRIX)
  if cfg['temporal'] == 'hybrid':
    allowed |= set(_HYBRID)
  for key in overrides:
    if key not in allowed:
      fields = {f.name for f in dataclasses.fields(LatteStyleDiT)}
      why = 'does not apply to' if key in fields else 'is not an option of'
      raise TypeError(f'get_model: override {key!r} {why} {name!r}; allowed: {", ".join(sorted(allowed))}.')
  cfg.update(overrides)
  cfg['dtype'] = _as_dtype(cfg.get('dtype', jnp.float32))
  _validate(name, cfg)
  return LatteStyleDiT(**cfg)


def _validate(name: str, cfg: dict[str, Any]) -> None:
  """One-line ValueErrors for inconsistent settings."""
  d, p = cfg['hidden_size'], cfg['patch_size']
  input_size = cfg.get('input_size', 32)
  if input_size % p:
    raise ValueError(f'{name}: input_size={input_size} must be divisible by patch_size={p}.')
  if d % cfg['num_heads'] or d % 4:
    raise ValueError(f'{name}: hidden_size={d} must be divisible by num_heads={cfg["num_heads"]} and by 4.')
  if cfg.get('num_classes', 0) < 0:
    raise ValueError(f'{name}: num_classes must be >= 0 (0 = unconditional), got {cfg["num_classes"]}.')
  if cfg.get('use_image_num', 0) < 0:
    raise ValueError(f'{name}: use_image_num must be >= 0, got {cfg["use_image_num"]}.')
  if cfg.get('attention_kernel', 'einsum') not in ATTENTION_KERNELS:
    raise ValueError(f'{name}: attention_kernel must be one of {ATTENTION_KERNELS}, got {cfg["attention_kernel"]!r}.')
  if cfg['temporal'] in ('matrix', 'hybrid'):
    c = cfg.get('num_col_heads', NUM_COL_HEADS)
    if cfg.get('u_type', 'param') not in U_TYPES:
      raise ValueError(f'{name}: u_type must be one of {U_TYPES}, got {cfg["u_type"]!r}.')
    if cfg['qk_col_dim'] % c or cfg['v_col_dim'] % c:
      raise ValueError(f'{name}: qk_col_dim={cfg["qk_col_dim"]} and v_col_dim={cfg["v_col_dim"]} must be '
                       f'divisible by num_col_heads={c}.')
    if cfg.get('u_type') == 'identity':
      n = (input_size // p)**2
      if not cfg['qk_col_dim'] == cfg['v_col_dim'] == n:
        raise ValueError(f"{name}: u_type='identity' needs qk_col_dim = v_col_dim = N = {n}.")
  if cfg['temporal'] == 'hybrid' and cfg.get('fuse_mode', 'concat') not in FUSE_MODES:
    raise ValueError(f'{name}: fuse_mode must be one of {FUSE_MODES}, got {cfg["fuse_mode"]!r}.')

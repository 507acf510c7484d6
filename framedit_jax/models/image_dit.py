"""The image DiT (Peebles & Xie; official facebookresearch/DiT `models.py`) built from our video blocks.

`x (B, H, W, C)` -> per-image patch embed `(B, 1, N, D)` + 2-D sin-cos -> `depth` spatial adaLN-Zero blocks
conditioned on `c = t_emb + y_emb` -> final layer -> unpatchify. The parameter tree uses the same submodule names
as `LatteStyleDiT` (`x_embedder`, `t_embedder`, `y_embedder`, `blocks_i`, `final_layer`), so a converted DiT maps onto
the spatial blocks of a Latte / FrameDiT model by name (see `framedit_jax.convert.init_from_image_dit`).

Names (official `DiT_models`): DiT-{S,B,L,XL}/{2,4,8}, e.g. `DiT-XL/2` (28 blocks, hidden 1152, 16 heads).
"""

from __future__ import annotations

import difflib
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from framedit_jax.models.backbone import unpatchify
from framedit_jax.models.blocks import DiTBlock, FinalLayer
from framedit_jax.models.embeddings import LabelEmbedder, PatchEmbed, TimestepEmbedder, get_2d_sincos_pos_embed

# size: (depth, hidden_size, num_heads) -- official DiT configs (models.py DiT_XL_2 ... DiT_S_8).
DIT_SIZES = {'S': (12, 384, 6), 'B': (12, 768, 12), 'L': (24, 1024, 16), 'XL': (28, 1152, 16)}
DIT_PATCHES = (2, 4, 8)
_DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16, 'float16': jnp.float16}


class DiT(nn.Module):
  """Class-conditional image diffusion transformer (official `DiT`).

  Call: `module.apply({'params': p}, x, t, y, train=False, rngs={'dropout': key})`
    x: `(B, H, W, C)` float latents, H = W = input_size, C = in_channels.
    t: `(B,)` timesteps 0..999 (int or float).
    y: `(B,)` int labels in [0, num_classes] (num_classes = the null label); required iff num_classes > 0.
    train: label dropout with p = class_dropout_prob ('dropout' rng).
  Returns float32 `(B, H, W, 2C)` if learn_sigma (eps, then the variance interpolant) else `(B, H, W, C)`.
  Raises ValueError (one line) on a wrong input shape or missing labels.
  """
  input_size: int = 32
  patch_size: int = 2
  in_channels: int = 4
  hidden_size: int = 1152
  depth: int = 28
  num_heads: int = 16
  mlp_ratio: float = 4.0
  num_classes: int = 1000
  class_dropout_prob: float = 0.1
  learn_sigma: bool = True
  dtype: Any = jnp.float32
  attention_kernel: str = 'einsum'

  @property
  def out_channels(self) -> int:
    return 2 * self.in_channels if self.learn_sigma else self.in_channels

  def _check_inputs(self, x: jax.Array, t: jax.Array, y: jax.Array | None) -> None:
    if x.ndim != 4:
      raise ValueError(f'DiT: x must be (B, H, W, C) images, got shape {x.shape}.')
    b, h, w, c = x.shape
    if (h, w, c) != (self.input_size, self.input_size, self.in_channels):
      raise ValueError(f'DiT: x has (H, W, C) = {(h, w, c)} but input_size={self.input_size}, '
                       f'in_channels={self.in_channels}; pass matching overrides to get_image_dit.')
    if t.shape != (b,):
      raise ValueError(f'DiT: t must have shape (B,) = ({b},), got {t.shape}.')
    if self.num_classes > 0 and y is None:
      raise ValueError(f'DiT: y (class labels) is required, the model is class-conditional '
                       f'(num_classes={self.num_classes}).')

  @nn.compact
  def __call__(self, x: jax.Array, t: jax.Array, y: jax.Array | None = None, train: bool = False) -> jax.Array:
    self._check_inputs(x, t, y)
    d, p = self.hidden_size, self.patch_size
    grid = self.input_size // p
    h = PatchEmbed(d, p, self.dtype, name='x_embedder')(x[:, None])  # (B, 1, N, D)
    h = h + jnp.asarray(get_2d_sincos_pos_embed(d, grid))[None, None]
    c = TimestepEmbedder(d, name='t_embedder')(t)  # (B, D)
    if self.num_classes > 0:
      c = c + LabelEmbedder(self.num_classes, d, self.class_dropout_prob, name='y_embedder')(y, train)
    for i in range(self.depth):
      h = DiTBlock(d, self.num_heads, 'spatial', self.mlp_ratio, dtype=self.dtype,
                   attention_kernel=self.attention_kernel, name=f'blocks_{i}')(h, c)
    out = FinalLayer(d, p, self.out_channels, self.dtype, name='final_layer')(h, c)
    return unpatchify(out, (grid, grid), p, self.out_channels)[:, 0]


def list_image_dits() -> list[str]:
  """All image-DiT names, e.g. 'DiT-XL/2'."""
  return sorted(f'DiT-{s}/{p}' for s in DIT_SIZES for p in DIT_PATCHES)


def image_dit_config(name: str) -> dict[str, int]:
  """depth, hidden_size, num_heads, patch_size of a DiT name. Raises KeyError with close matches."""
  names = list_image_dits()
  if name not in names:
    close = difflib.get_close_matches(name, names, n=4, cutoff=0.6)
    raise KeyError(f'Unknown image DiT {name!r}; choose from {", ".join(close or names)}.')
  size, p = name[len('DiT-'):].split('/')
  depth, hidden, heads = DIT_SIZES[size]
  return dict(depth=depth, hidden_size=hidden, num_heads=heads, patch_size=int(p))


def get_image_dit(name: str, **overrides: Any) -> DiT:
  """Builds the Flax image DiT for an official name.

  Args:
    name: 'DiT-XL/2', 'DiT-B/4', ... (`list_image_dits()`).
    **overrides: any `DiT` field: input_size (latent H = W, default 32 = 256 px), in_channels (4), num_classes
      (1000; 0 = unconditional), class_dropout_prob, learn_sigma, dtype ('float32' | 'bfloat16' | jnp dtype),
      attention_kernel; architecture (tests): depth, hidden_size, num_heads, patch_size, mlp_ratio.

  Raises:
    KeyError: unknown name. TypeError: unknown override. ValueError: inconsistent sizes.
  """
  cfg = image_dit_config(name)
  fields = set(DiT.__dataclass_fields__) - {'parent', 'name'}
  bad = sorted(set(overrides) - fields)
  if bad:
    raise TypeError(f'get_image_dit: unknown override(s) {bad}; allowed: {", ".join(sorted(fields))}.')
  cfg.update(overrides)
  if isinstance(cfg.get('dtype'), str):
    if cfg['dtype'] not in _DTYPES:
      raise ValueError(f'dtype must be one of {sorted(_DTYPES)}, got {cfg["dtype"]!r}.')
    cfg['dtype'] = _DTYPES[cfg['dtype']]
  if cfg.get('input_size', 32) % cfg['patch_size']:
    raise ValueError(f'{name}: input_size={cfg.get("input_size", 32)} must be divisible by '
                     f'patch_size={cfg["patch_size"]}.')
  if cfg['hidden_size'] % cfg['num_heads'] or cfg['hidden_size'] % 4:
    raise ValueError(f'{name}: hidden_size={cfg["hidden_size"]} must be divisible by num_heads and by 4.')
  return DiT(**cfg)

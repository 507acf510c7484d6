"""VideoDiT's 2D->3D model (videodit.md §3.2): an image DiT whose attention runs over all T*N video tokens.

  x (B, T, H, W, C) -> per-frame patch embed (the DiT's `x_embedder`) + 2-D sin-cos            (B, T, N, D)
                     + proj_3d(x_embedder_3d(x) + 3-D sin-cos)    3D-patchify branch, proj_3d zero-initialised
  -> `depth` adaLN-Zero blocks whose attention is the DiT's spatial attention (`attn/qkv`, `attn/proj`) applied
     to the T*N tokens of the clip (no new attention parameters) -> final layer per token -> unpatchify.

The parameter tree is the DiT's (`framedit_jax.models.image_dit.DiT`) plus `x_embedder_3d` and `proj_3d`, so a
converted DiT loads by name (`videodit_params_from_dit`). With the zero projection, a clip of T identical frames
gives exactly the DiT's output on that frame: attention over T identical copies of each key/value equals
attention over one copy.

3-D sin-cos embedding: the first D/4 channels encode the frame index (1-D `[sin | cos]`), the other 3D/4 the
patch position (MAE 2-D sin-cos, column then row), the split of CogVideoX's `get_3d_sincos_pos_embed`.
Names: VideoDiT-{S,B,L,XL}/{2,4,8} (DiT sizes).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from framedit_jax.models.backbone import unpatchify
from framedit_jax.models.blocks import DiTBlock, FinalLayer, remat_policy, unrolled_only
from framedit_jax.models.embeddings import (LabelEmbedder, PatchEmbed, TimestepEmbedder, get_1d_sincos_embed,
                                            get_2d_sincos_pos_embed)
from framedit_jax.models.image_dit import DIT_PATCHES, DIT_SIZES


def get_3d_sincos_pos_embed(embed_dim: int, grid_size: int, num_frames: int) -> np.ndarray:
  """Fixed 3-D sin-cos embedding, float32 `(T, N, D)`: `[temporal (D/4) | spatial 2-D (3D/4)]`.

  Raises:
    ValueError: D not divisible by 16 (each part needs an even sin/cos split per axis).
  """
  if embed_dim % 16:
    raise ValueError(f'hidden_size must be divisible by 16 for the 3-D sin-cos embedding, got {embed_dim}.')
  dt = embed_dim // 4
  temporal = get_1d_sincos_embed(dt, np.arange(num_frames)).astype(np.float32)  # (T, D/4)
  spatial = get_2d_sincos_pos_embed(embed_dim - dt, grid_size)  # (N, 3D/4)
  n = spatial.shape[0]
  return np.concatenate([np.broadcast_to(temporal[:, None], (num_frames, n, dt)),
                         np.broadcast_to(spatial[None], (num_frames, n, embed_dim - dt))], axis=-1)


class VideoDiT2Dto3D(nn.Module):
  """Full-3D video DiT initialisable from an image DiT (build with `get_videodit` or `get_model('VideoDiT-..')`).

  Call: `module.apply({'params': p}, x, t, y=None, train=False)`
    x: `(B, T, H, W, C)`, 1 <= T <= num_frames (T = 1: an image step of joint training), H = W = input_size. t: `(B,)` timesteps. y: `(B,)` labels iff
    num_classes > 0 (num_classes = null label). Returns float32 `(B, T, H, W, C_out)`.
  Raises ValueError (one line) on wrong shapes, missing labels, or use_image_num / frame_axis (unsupported).
  """
  input_size: int = 32
  patch_size: int = 2
  in_channels: int = 4
  hidden_size: int = 1152
  depth: int = 28
  num_heads: int = 16
  mlp_ratio: float = 4.0
  num_frames: int = 16
  num_classes: int = 0
  class_dropout_prob: float = 0.1
  learn_sigma: bool = True
  patchify_3d: bool = True
  dtype: Any = jnp.float32
  attention_kernel: str = 'einsum'
  remat: bool = False
  remat_policy: str = 'none'
  use_image_num: int = 0
  frame_axis: str | None = None

  temporal = 'full3d'  # every block attends over all T*N tokens (used by init-from-DiT and the FLOP model)

  @property
  def out_channels(self) -> int:
    return 2 * self.in_channels if self.learn_sigma else self.in_channels

  def _check_inputs(self, x: jax.Array, t: jax.Array, y: jax.Array | None) -> None:
    if self.use_image_num or self.frame_axis is not None:
      raise ValueError('VideoDiT 2D->3D: use_image_num and frame parallelism are not supported; set '
                       'config.data.use_image_num=0 and config.mesh.frame=1 (joint training: config.data.video_prob).')
    if (x.ndim != 5 or not 1 <= x.shape[1] <= self.num_frames
        or x.shape[2:] != (self.input_size, self.input_size, self.in_channels)):
      raise ValueError(f'x must be (B, T, {self.input_size}, {self.input_size}, {self.in_channels}) with '
                       f'1 <= T <= num_frames={self.num_frames} (input_size, in_channels), got {x.shape}.')
    if t.shape != (x.shape[0],):
      raise ValueError(f't must have shape (B,) = ({x.shape[0]},), got {t.shape}.')
    if self.num_classes > 0 and y is None:
      raise ValueError(f'y (class labels) is required: num_classes={self.num_classes}.')

  @nn.compact
  def __call__(self, x: jax.Array, t: jax.Array, y: jax.Array | None = None, train: bool = False) -> jax.Array:
    self._check_inputs(x, t, y)
    d, p = self.hidden_size, self.patch_size
    grid = self.input_size // p
    h = PatchEmbed(d, p, self.dtype, name='x_embedder')(x)  # (B, T, N, D)
    h = h + jnp.asarray(get_2d_sincos_pos_embed(d, grid))[None, None]
    if self.patchify_3d:
      e3 = PatchEmbed(d, p, self.dtype, name='x_embedder_3d')(x)
      e3 = e3 + jnp.asarray(get_3d_sincos_pos_embed(d, grid, x.shape[1]))[None]  # frames 0..T-1
      h = h + nn.Dense(d, kernel_init=nn.initializers.zeros, name='proj_3d')(e3)  # zero-init: starts as the DiT
    c = TimestepEmbedder(d, name='t_embedder')(t)
    if self.num_classes > 0:
      c = c + LabelEmbedder(self.num_classes, d, self.class_dropout_prob, name='y_embedder')(y, train)
    policy = remat_policy(self.remat_policy, self.remat)
    block_cls = DiTBlock if policy is None else nn.remat(DiTBlock, policy=policy)
    for i in range(self.depth):
      h = block_cls(d, self.num_heads, 'full3d', self.mlp_ratio, dtype=self.dtype,
                    attention_kernel=self.attention_kernel, name=f'blocks_{i}')(h, c)
    out = FinalLayer(d, p, self.out_channels, self.dtype, name='final_layer')(h, c)
    return unpatchify(out, (grid, grid), p, self.out_channels)


def list_videodits() -> list[str]:
  """'VideoDiT-{S,B,L,XL}/{2,4,8}'."""
  return sorted(f'VideoDiT-{s}/{p}' for s in DIT_SIZES for p in DIT_PATCHES)


def get_videodit(name: str, **overrides: Any) -> VideoDiT2Dto3D:
  """Builds a `VideoDiT2Dto3D` for 'VideoDiT-XL/2' etc. (sizes of the DiT of the same name).

  Raises:
    KeyError: unknown name. TypeError: unknown override.
  """
  if name not in list_videodits():
    raise KeyError(f'Unknown VideoDiT name {name!r}; choose from {", ".join(list_videodits())}.')
  size, p = name[len('VideoDiT-'):].split('/')
  depth, hidden, heads = DIT_SIZES[size]
  cfg = dict(depth=depth, hidden_size=hidden, num_heads=heads, patch_size=int(p))
  overrides = unrolled_only(name, overrides)  # scan_blocks / cpu_kernels: blocks run unrolled here
  fields = set(VideoDiT2Dto3D.__dataclass_fields__) - {'parent', 'name'}
  bad = sorted(set(overrides) - fields)
  if bad:
    raise TypeError(f'get_videodit: unknown override(s) {bad}; allowed: {", ".join(sorted(fields))}.')
  cfg.update(overrides)
  if isinstance(cfg.get('dtype'), str):
    cfg['dtype'] = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16, 'float16': jnp.float16}[cfg['dtype']]
  return VideoDiT2Dto3D(**cfg)

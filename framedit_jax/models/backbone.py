"""The video diffusion transformer shared by Latte, DiT3D, FrameDiT-G and FrameDiT-H.

Source: Latte (arXiv 2401.03048) §3.2 Variant 1; official `models/latte.py`, `models/framedit_g.py`,
`models/framedit_h.py`, `models/dit3d.py` of minhkhoale/FrameDiT.

Layout: `x (B, T, H, W, C)` -> patch embed `(B, T, N, D)` + 2-D sin-cos -> blocks -> final layer -> unpatchify.
  * temporal='local' (Latte), 'matrix' (FrameDiT-G), 'hybrid' (FrameDiT-H): even blocks are spatial, odd blocks
    temporal; the 1-D temporal embedding is added once, after the first spatial block, to the video frames.
  * temporal='full3d' (DiT3D): the temporal embedding is added right after the patch embedding and every block
    attends over all T*N tokens.
  * use_image_num > 0 (IMG variants): the last `use_image_num` frames are images. Spatial blocks and the final
    layer see every frame; temporal blocks see only the first `num_frames` (the images are sliced off).

Official files: `models/latte.py`, `latte_img.py`, `dit3d.py`, `framedit_g.py`, `framedit_g_img.py`,
`framedit_h.py`, `framedit_h_img.py`.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from framedit_jax.models.blocks import DiTBlock, FinalLayer, remat_policy
from framedit_jax.models.embeddings import (LabelEmbedder, PatchEmbed, TimestepEmbedder, get_1d_sincos_temp_embed,
                                            get_2d_sincos_pos_embed)
from framedit_jax.parallel.collectives import frame_axis_size, frame_offset

TEMPORAL_DESIGNS = ('local', 'matrix', 'hybrid', 'full3d')


def unpatchify(x: jax.Array, grid: tuple[int, int], patch_size: int, channels: int) -> jax.Array:
  """`(B, T, h*w, p*p*C)` -> `(B, T, h*p, w*p, C)` (inverse of the row-major patch embedding)."""
  b, t = x.shape[:2]
  h, w = grid
  p = patch_size
  x = x.reshape(b, t, h, w, p, p, channels)
  x = jnp.transpose(x, (0, 1, 2, 4, 3, 5, 6))
  return x.reshape(b, t, h * p, w * p, channels)


class LatteStyleDiT(nn.Module):
  """Latte / DiT3D / FrameDiT-G / FrameDiT-H backbone (build it with `framedit_jax.models.get_model`).

  Call:
    `module.apply({'params': p}, x, t, y=None, train=False, y_image=None, rngs={'dropout': key})`
    x: `(B, T, H, W, C)` float, T = num_frames + use_image_num, H = W = input_size, C = in_channels.
    t: `(B,)` int timesteps 0..999.
    y: `(B,)` int labels in [0, num_classes] (num_classes = null label); required iff num_classes > 0.
    train: applies label dropout (p = class_dropout_prob, 'dropout' rng).
    y_image: optional `(B, use_image_num)` labels of the image frames (IMG training); defaults to y. A 2-D
      `y` of shape `(B, 1 + use_image_num)` is split into y = y[:, 0], y_image = y[:, 1:] (the train step's form).
  Returns float32 `(B, T, H, W, 2C)` if learn_sigma (eps then the variance interpolant) else `(B, T, H, W, C)`.
  remat_policy: per-block rematerialisation ('none', 'full', 'dots_saveable', ...; see `blocks.remat_policy`);
    `remat=True` is the legacy spelling of 'full'.
  scan_blocks: run the blocks as one `lax.scan` over (spatial, temporal) pairs (single blocks for full3d). Same
    parameters (`blocks_i`) and the same numbers as the unrolled model (to float rounding); the backward is linear
    in depth on XLA CPU and compile time is flat in depth. Init always runs unrolled.
  cpu_kernels: the XLA CPU backward kernels in every block (`framedit_jax.models.cpu`; identical params and
    numbers). `get_model` callers usually take it, scan_blocks and remat_policy from the config's 'auto' defaults
    (`framedit_jax.models.cpu.defaults`).
  frame_axis: mesh axis name for frame parallelism. Only inside a `jax.shard_map` binding it (see
    `framedit_jax.parallel.frame_parallel.apply_frame_parallel`) does x hold this shard's T/f frames: the
    temporal embedding is sliced at offset axis_index * T/f and the temporal mixers communicate; elsewhere
    (init, sampling, one device) the model is unchanged.
  context_parallel: how frame-parallel Full 3D / Matrix Attention see other shards' K/V: 'gather' (all-gather),
    'ring' (ppermute ring, online softmax) or 'ulysses' (all-to-all over heads); see
    `framedit_jax.parallel.context_parallel`. Same parameters and numbers.
  """
  temporal: str = 'local'
  input_size: int = 32
  patch_size: int = 2
  in_channels: int = 4
  hidden_size: int = 1152
  depth: int = 28
  num_heads: int = 16
  mlp_ratio: float = 4.0
  num_frames: int = 16
  use_image_num: int = 0
  num_classes: int = 0
  class_dropout_prob: float = 0.1
  learn_sigma: bool = True
  qk_col_dim: int = 128
  v_col_dim: int = 512
  num_col_heads: int = 64
  u_type: str = 'param'
  fuse_mode: str = 'concat'
  dtype: Any = jnp.float32
  attention_kernel: str = 'einsum'
  remat: bool = False
  remat_policy: str = 'none'
  scan_blocks: bool = False
  cpu_kernels: bool = False
  frame_axis: str | None = None
  context_parallel: str = 'gather'

  def _block(self, i: int, mixer: str, bound: bool = True, policy: Any = None) -> DiTBlock:
    """Block `i` with this model's settings: the `blocks_i` submodule, or an unbound copy for the scanned stack."""
    cls = DiTBlock if policy is None else nn.remat(DiTBlock, policy=policy)
    kw = {'name': f'blocks_{i}'} if bound else {'parent': None}
    return cls(self.hidden_size, self.num_heads, mixer, self.mlp_ratio, self.qk_col_dim, self.v_col_dim,
               self.num_col_heads, self.u_type, self.fuse_mode, self.dtype, self.attention_kernel,
               frame_axis=self.frame_axis, cpu_kernels=self.cpu_kernels,
               context_parallel=self.context_parallel, **kw)

  def _mixers(self) -> list[str]:
    if self.temporal == 'full3d':
      return ['full3d'] * self.depth
    return ['spatial' if i % 2 == 0 else self.temporal for i in range(self.depth)]

  def _run_blocks(self, h: jax.Array, c_spatial: jax.Array, c_temporal: jax.Array, temp_embed: jax.Array,
                  tv: int) -> jax.Array:
    """All `depth` blocks on `(B, T, N, D)`: unrolled (`blocks_i` submodules) or as one `lax.scan`.

    The temporal embedding is added to the video frames before the first temporal block (after the patch
    embedding for full3d). Temporal blocks see only the first `tv` frames.
    """
    mixers = self._mixers()
    if self.temporal == 'full3d':
      if self.use_image_num:
        raise ValueError('use_image_num > 0 is not supported by DiT3D (full3d); use a Latte/FrameDiT IMG model.')
      h = h + temp_embed
    if self.scan_blocks and not self.is_initializing():
      return self._scan_blocks(h, c_spatial, c_temporal, temp_embed, tv, mixers)
    policy = remat_policy(self.remat_policy, self.remat)
    for i, mixer in enumerate(mixers):
      block = self._block(i, mixer, policy=policy)
      h = self._apply_block(block, h, mixer, i == 1, c_spatial, c_temporal, temp_embed, tv)
    return h

  def _apply_block(self, fn, h, mixer, first_temporal, c_spatial, c_temporal, temp_embed, tv):
    """One block: spatial/full3d blocks see all frames; temporal blocks the video frames (+ temp_embed first)."""
    if mixer in ('spatial', 'full3d'):
      return fn(h, c_spatial)
    video, images = h[:, :tv], h[:, tv:]
    if first_temporal is True:
      video = video + temp_embed
    elif first_temporal is not False:  # traced 0/1 flag inside the scan
      video = video + temp_embed * first_temporal
    video = fn(video, c_temporal)
    return jnp.concatenate([video, images], axis=1) if self.use_image_num else video

  def _scan_blocks(self, h, c_spatial, c_temporal, temp_embed, tv, mixers):
    """The blocks as a `lax.scan` over groups (one block for full3d, a spatial+temporal pair otherwise).

    The parameters keep their unrolled `blocks_i` layout (converters, checkpoints and sharding rules are shared
    with the unrolled model); they are stacked per group inside the computation. Each scan iteration is compiled
    once, so compile time is flat in depth, and the backward materialises the residual-stream cotangent at every
    group boundary (XLA CPU otherwise fuses the whole cross-block elementwise chain into many consumers).
    """
    params = self.variables['params']
    group = 1 if self.temporal == 'full3d' else 2
    n_groups = self.depth // group
    if n_groups == 0:
      return h if self.depth == 0 else self._run_unbound(h, c_spatial, c_temporal, temp_embed, tv, mixers, 0)
    stacked = [jax.tree.map(lambda *xs: jnp.stack(xs), *[params[f'blocks_{g * group + j}'] for g in range(n_groups)])
               for j in range(group)]
    blocks = [self._block(j, mixers[j], bound=False) for j in range(group)]
    first = (jnp.arange(n_groups) == 0).astype(jnp.float32)
    policy = remat_policy(self.remat_policy, self.remat)

    def body(x, xs):
      group_params, flag = xs
      for j in range(group):
        fn = lambda a, c, j=j: blocks[j].apply({'params': group_params[j]}, a, c)
        x = self._apply_block(fn, x, mixers[j], flag if group == 2 and j == 1 else False, c_spatial, c_temporal,
                              temp_embed, tv)
      return x, None

    if policy is not None:
      body = jax.checkpoint(body, policy=policy, prevent_cse=False)
    h, _ = jax.lax.scan(body, h, (stacked, first))
    return self._run_unbound(h, c_spatial, c_temporal, temp_embed, tv, mixers, n_groups * group)

  def _run_unbound(self, h, c_spatial, c_temporal, temp_embed, tv, mixers, start):
    """Blocks `start..depth-1` applied one by one from `self.variables` (odd depth: the trailing spatial block)."""
    params = self.variables['params']
    for i in range(start, self.depth):
      fn = lambda a, c, i=i: self._block(i, mixers[i], bound=False).apply({'params': params[f'blocks_{i}']}, a, c)
      h = self._apply_block(fn, h, mixers[i], i == 1, c_spatial, c_temporal, temp_embed, tv)
    return h

  @property
  def out_channels(self) -> int:
    return self.in_channels * 2 if self.learn_sigma else self.in_channels

  def _check_inputs(self, x: jax.Array, t: jax.Array, y: jax.Array | None) -> None:
    if x.ndim != 5:
      raise ValueError(f'x must be (B, T, H, W, C), got shape {x.shape}.')
    b, frames, h, w, c = x.shape
    shards = frame_axis_size(self.frame_axis)
    if shards > 1 and self.use_image_num:
      raise ValueError('use_image_num > 0 is not supported with frame parallelism; set config.mesh.frame=1.')
    if frames * shards != self.num_frames + self.use_image_num:
      raise ValueError(f'x has T={frames} frames but num_frames + use_image_num = '
                       f'{self.num_frames} + {self.use_image_num}; set num_frames/use_image_num to match.')
    if h != self.input_size or w != self.input_size:
      raise ValueError(f'x has H, W = {h}, {w} but input_size = {self.input_size}; pass input_size=H to get_model.')
    if c != self.in_channels:
      raise ValueError(f'x has C={c} channels but in_channels = {self.in_channels}.')
    if t.shape != (b,):
      raise ValueError(f't must have shape (B,) = ({b},), got {t.shape}.')
    if self.num_classes > 0 and y is None:
      raise ValueError(f'y (class labels) is required: the model is class-conditional '
                       f'(num_classes={self.num_classes}).')

  @nn.compact
  def __call__(self, x: jax.Array, t: jax.Array, y: jax.Array | None = None, train: bool = False,
               y_image: jax.Array | None = None) -> jax.Array:
    if y is not None and y.ndim == 2:  # (B, 1 + use_image_num): the clip's label, then each image frame's own
      y, y_image = y[:, 0], y[:, 1:]
    self._check_inputs(x, t, y)
    if self.temporal not in TEMPORAL_DESIGNS:
      raise ValueError(f'temporal must be one of {TEMPORAL_DESIGNS}, got {self.temporal!r}.')
    d, p = self.hidden_size, self.patch_size
    grid = (self.input_size // p, self.input_size // p)
    tv = self.num_frames

    h = PatchEmbed(d, p, self.dtype, name='x_embedder')(x)  # (B, T, N, D)
    h = h + jnp.asarray(get_2d_sincos_pos_embed(d, grid[0]))[None, None]
    temp_embed = jnp.asarray(get_1d_sincos_temp_embed(d, tv))[None, :, None, :]  # (1, Tv, 1, D)
    if frame_axis_size(self.frame_axis) > 1:  # this shard's frames only
      tv = x.shape[1]
      temp_embed = jax.lax.dynamic_slice_in_dim(temp_embed, frame_offset(self.frame_axis, tv), tv, axis=1)

    c = TimestepEmbedder(d, name='t_embedder')(t)  # (B, D)
    c_spatial = c_temporal = c
    if self.num_classes > 0:
      y_embedder = LabelEmbedder(self.num_classes, d, self.class_dropout_prob, name='y_embedder')
      y_emb = y_embedder(y, train)
      c_temporal = c + y_emb
      c_spatial = c_temporal
      if self.use_image_num and y_image is not None:
        y_all = jnp.concatenate([jnp.broadcast_to(y_emb[:, None], (y_emb.shape[0], tv, d)),
                                 y_embedder(y_image, train)], axis=1)
        c_spatial = c[:, None, :] + y_all  # (B, T, D): per-frame conditioning

    h = self._run_blocks(h, c_spatial, c_temporal, temp_embed, tv)
    out = FinalLayer(d, p, self.out_channels, self.dtype, name='final_layer')(h, c_spatial)
    return unpatchify(out, grid, p, self.out_channels)

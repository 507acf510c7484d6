"""Analytic FLOP and attention-memory model of the video DiT designs (Latte, DiT3D, FrameDiT-G, FrameDiT-H).

Convention (the usual MFU one, e.g. PaLM appendix B / DiT):
  * only matrix products are counted, a `(m, k) @ (k, n)` product costs `2 m n k`; elementwise work (LayerNorm,
    softmax, GELU, modulation, residuals, biases) is left out. It is ~1-5% of XLA's count at real widths;
  * attention counts the score product `QK^T` and the `AV` product (`2 * 2 L^2 D` per sequence of L tokens);
  * MatrixLinear `U^T X W` is counted in the cheaper contraction order, as `models.attention.matrix_linear` runs
    it (official `models/framedit_g.py` order; forming `U^T X` first would cost `2 r D^2` when r > N);
  * adaLN modulation is counted once per batch element, as `models.blocks.DiTBlock` computes it;
  * a train step is `3x` the forward (forward + backward for activations and weights), with no remat recompute:
    model FLOPs, not hardware FLOPs. Optimizer and EMA updates are elementwise and not counted.

All functions are pure Python on ints (no JAX), so they can size benchmark cases before anything is compiled.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from framedit_jax.models.registry import model_config

TRAIN_FLOPS_MULTIPLIER = 3


@dataclasses.dataclass(frozen=True)
class ModelShape:
  """Everything the FLOP count depends on.

  Attributes:
    temporal: 'local' (Latte), 'full3d' (DiT3D), 'matrix' (FrameDiT-G) or 'hybrid' (FrameDiT-H).
    depth, hidden_size (D), num_heads (R for Matrix Attention), patch_size (p).
    input_size: latent H = W; N = (input_size / p)^2 tokens per frame.
    num_frames: T (video frames; use_image_num is not modelled).
    in_channels, learn_sigma: patch embedding / final layer widths.
    qk_col_dim (r_qk), v_col_dim (r_v), num_col_heads (C), fuse_mode ('concat' | 'gated' | 'sum' | 'local').
    mlp_ratio: MLP hidden = mlp_ratio * D.
    batch_size: B.
  """
  temporal: str
  depth: int
  hidden_size: int
  num_heads: int
  patch_size: int
  input_size: int
  num_frames: int
  in_channels: int = 4
  learn_sigma: bool = True
  qk_col_dim: int = 128
  v_col_dim: int = 512
  num_col_heads: int = 64
  fuse_mode: str = 'concat'
  mlp_ratio: float = 4.0
  batch_size: int = 1

  @property
  def tokens_per_frame(self) -> int:
    return (self.input_size // self.patch_size)**2


def shape_from_name(name: str, *, input_size: int, num_frames: int, batch_size: int = 1, **overrides: Any
                    ) -> ModelShape:
  """`ModelShape` of a registry name (e.g. 'FrameDiTH-XL/128-512/2-concat') with `get_model`-style overrides.

  Raises:
    KeyError: unknown name. TypeError: an override that is not a `ModelShape` field.
  """
  cfg = model_config(name)
  fields = {f.name for f in dataclasses.fields(ModelShape)}
  kw = {k: v for k, v in cfg.items() if k in fields}
  for k, v in overrides.items():
    if k not in fields:
      if k in ('dtype', 'attention_kernel', 'remat', 'remat_policy', 'scan_blocks', 'cpu_kernels', 'num_classes', 'u_type', 'context_parallel',
               'class_dropout_prob', 'use_image_num'):
        continue  # do not change the FLOP count
      raise TypeError(f'shape_from_name: {k!r} is not a ModelShape field ({", ".join(sorted(fields))}).')
    kw[k] = v
  return ModelShape(input_size=input_size, num_frames=num_frames, batch_size=batch_size,
                    **{k: v for k, v in kw.items() if k not in ('input_size', 'num_frames', 'batch_size')})


def matmul(m: int, k: int, n: int) -> int:
  """FLOPs of an `(m, k) @ (k, n)` product: `2 m k n`."""
  return 2 * m * k * n


def matrix_linear_flops(n: int, d: int, r: int, k: int) -> int:
  """FLOPs of one `U^T X W` with X `(n, d)`, U `(n, r)`, W `(d, k)`, in the cheaper order.

  `(U^T X) W` = 2 r n d + 2 r d k; `U^T (X W)` = 2 n d k + 2 r n k (same rule as `attention.matrix_linear`).
  """
  return min(matmul(r, n, d) + matmul(r, d, k), matmul(n, d, k) + matmul(r, n, k))


def attention_flops(num_seq: int, length: int, d: int) -> int:
  """Scores + AV of softmax attention, summed over heads: `num_seq` sequences of `length` tokens, width d."""
  return 2 * num_seq * matmul(length, d, length)


def _mha_linear_flops(tokens: int, d: int) -> int:
  """qkv (D -> 3D) and proj (D -> D) Dense layers on `tokens` tokens."""
  return matmul(tokens, d, 3 * d) + matmul(tokens, d, d)


def _mlp_flops(tokens: int, d: int, ratio: float) -> int:
  h = int(d * ratio)
  return matmul(tokens, d, h) + matmul(tokens, h, d)


def matrix_attention_flops(s: ModelShape) -> int:
  """One Matrix Attention (FrameDiT-G temporal mixer) forward on `(B, T, N, D)`."""
  b, t, n, d = s.batch_size, s.num_frames, s.tokens_per_frame, s.hidden_size
  frames = b * t
  proj = (2 * matrix_linear_flops(n, d, s.qk_col_dim, d) + matrix_linear_flops(n, d, s.v_col_dim, d) +
          matrix_linear_flops(s.v_col_dim, d, n, d))
  # C*R heads, each a Frobenius product of (a x b) matrices: sum over heads of a*b = r * D.
  scores = b * matmul(t, s.qk_col_dim * d, t)
  av = b * matmul(t, t, s.v_col_dim * d)
  return frames * proj + scores + av


def mixer_flops(s: ModelShape, mixer: str) -> int:
  """Forward FLOPs of one block's token mixer ('spatial', 'local', 'full3d', 'matrix', 'hybrid')."""
  b, t, n, d = s.batch_size, s.num_frames, s.tokens_per_frame, s.hidden_size
  tokens = b * t * n
  if mixer == 'spatial':
    return _mha_linear_flops(tokens, d) + attention_flops(b * t, n, d)
  if mixer == 'local':
    return _mha_linear_flops(tokens, d) + attention_flops(b * n, t, d)
  if mixer == 'full3d':
    return _mha_linear_flops(tokens, d) + attention_flops(b, t * n, d)
  if mixer == 'matrix':
    return matrix_attention_flops(s)
  if mixer == 'hybrid':
    out = mixer_flops(s, 'local')
    if s.fuse_mode == 'local':
      return out
    out += matrix_attention_flops(s)
    if s.fuse_mode == 'concat':
      out += matmul(tokens, 2 * d, d)
    return out
  raise ValueError(f"mixer must be one of 'spatial', 'local', 'full3d', 'matrix', 'hybrid'; got {mixer!r}.")


def block_flops(s: ModelShape, mixer: str) -> int:
  """One adaLN-Zero block: adaLN Linear(D, 6D) per batch element + mixer + MLP."""
  b, t, n, d = s.batch_size, s.num_frames, s.tokens_per_frame, s.hidden_size
  return matmul(b, d, 6 * d) + mixer_flops(s, mixer) + _mlp_flops(b * t * n, d, s.mlp_ratio)


def forward_flops(s: ModelShape) -> dict[str, int]:
  """Forward FLOPs of the whole backbone, by part.

  Returns:
    dict with 'embed' (patch conv + timestep MLP), 'spatial', 'temporal' (or 'full3d' blocks), 'final' and
    'total' (all ints, FLOPs for the whole batch of `s.batch_size` videos).
  """
  b, t, n, d, p = s.batch_size, s.num_frames, s.tokens_per_frame, s.hidden_size, s.patch_size
  tokens = b * t * n
  out_channels = s.in_channels * (2 if s.learn_sigma else 1)
  parts = {
      'embed': matmul(tokens, p * p * s.in_channels, d) + matmul(b, 256, d) + matmul(b, d, d),
      'spatial': 0,
      'temporal': 0,
      'final': matmul(b, d, 2 * d) + matmul(tokens, d, p * p * out_channels),
  }
  for i in range(s.depth):
    if s.temporal == 'full3d':
      parts['temporal'] += block_flops(s, 'full3d')
    elif i % 2 == 0:
      parts['spatial'] += block_flops(s, 'spatial')
    else:
      parts['temporal'] += block_flops(s, s.temporal)
  parts['total'] = sum(parts.values())
  return parts


def train_step_flops(s: ModelShape) -> int:
  """Model FLOPs of one train step: `TRAIN_FLOPS_MULTIPLIER` (3) x forward."""
  return TRAIN_FLOPS_MULTIPLIER * forward_flops(s)['total']


def temporal_attention_score_elements(s: ModelShape) -> int:
  """Elements of the temporal attention map(s) of one temporal block (per batch of B videos).

  Local Factorized: `B N h T^2`; Full 3D: `B h (T N)^2`; Matrix Attention: `B C R T^2` (R = num_heads);
  FrameDiT-H: local + matrix. This is what a materialised score tensor holds (FrameDiT supplement §1).
  """
  b, t, n, h = s.batch_size, s.num_frames, s.tokens_per_frame, s.num_heads
  local = b * n * h * t * t
  matrix = b * s.num_col_heads * h * t * t
  return {'local': local, 'full3d': b * h * (t * n)**2, 'matrix': matrix,
          'hybrid': local + matrix}[s.temporal]


def t2v_forward_flops(cfg: Any, *, input_size: int, num_frames: int, text_len: int, batch_size: int = 1
                      ) -> dict[str, int]:
  """Forward FLOPs of a T2V transformer (`models/t2v`: LatteT2V, FrameDiT-H-T2V), same convention as above.

  Args:
    cfg: the model's fields (a mapping or the Flax module itself): num_attention_heads, attention_head_dim,
      num_layers, patch_size, in_channels, out_channels, caption_channels; for FrameDiT-H-T2V also num_col_heads,
      qk_col_dim, v_col_dim, fuse_mode, bias_type ('col_row' adds its rank-16 bias product per MatrixLinear).
    input_size: latent H = W; num_frames: F frames the model sees; text_len: caption tokens L (T5, 120 in the
      official recipes); batch_size: B.

  Returns:
    dict with 'embed' (patch conv, adaLN-single MLP, caption projection), 'spatial' (self-attention per frame,
    cross-attention of every token to the caption, MLP), 'temporal', 'final' and 'total' (ints, whole batch).
    Each of the `num_layers` layers is one spatial and one temporal block (official Latte-T2V layout).
  """
  get = cfg.get if hasattr(cfg, 'get') else lambda k, default=None: getattr(cfg, k, default)
  b, f, l = int(batch_size), int(num_frames), int(text_len)
  p, d = int(get('patch_size')), int(get('num_attention_heads')) * int(get('attention_head_dim'))
  n = (int(input_size) // p)**2
  tokens = b * f * n
  parts = {
      'embed': (matmul(tokens, p * p * int(get('in_channels')), d) + matmul(b, 256, d) + matmul(b, d, d) +
                matmul(b, d, 6 * d) + matmul(b * l, int(get('caption_channels')), d) + matmul(b * l, d, d)),
      'final': matmul(tokens, d, p * p * int(get('out_channels'))),
  }
  cross = 2 * matmul(tokens, d, d) + 2 * matmul(b * l, d, d) + 2 * b * matmul(f * n, d, l)
  spatial = _mha_linear_flops(tokens, d) + attention_flops(b * f, n, d) + cross + _mlp_flops(tokens, d, 4)
  temporal = _mha_linear_flops(tokens, d) + attention_flops(b * n, f, d) + _mlp_flops(tokens, d, 4)
  fuse = get('fuse_mode', None)
  if get('num_col_heads', None) is not None and fuse != 'local':  # FrameDiT-H-T2V's Matrix Attention branch
    r_qk, r_v = int(get('qk_col_dim')), int(get('v_col_dim'))
    shape = ModelShape(temporal='matrix', depth=1, hidden_size=d, num_heads=int(get('num_attention_heads')),
                       patch_size=p, input_size=int(input_size), num_frames=f, qk_col_dim=r_qk, v_col_dim=r_v,
                       num_col_heads=int(get('num_col_heads')), batch_size=b)
    temporal += matrix_attention_flops(shape)
    if get('bias_type', 'col_row') == 'col_row':  # bias_col (rows, 16) @ bias_row (16, D), once per call
      temporal += sum(matmul(rows, 16, d) for rows in (r_qk, r_qk, r_v, n))
    if fuse == 'concat':
      temporal += matmul(tokens, 2 * d, d)
  layers = int(get('num_layers'))
  parts['spatial'], parts['temporal'] = layers * spatial, layers * temporal
  parts['total'] = sum(parts.values())
  return parts

"""Analytic FLOPs of the Latte design space (`framedit_jax/models/latte_design.py`) and
VideoDiT 2D->3D (`framedit_jax/models/videodit.py`), for benchmarks/step_time.py and the README's table.

Same convention as `framedit_jax.models.flops` (matmul FLOPs only, `2 m k n` per product, attention = scores + AV,
adaLN once per batch element, train step = 3x forward); RoPE and the sin-cos embeddings are elementwise (0).
`design_forward_flops('LatteV1-S/2', ...)` equals `flops.forward_flops` of 'Latte-S/2'.
"""

from __future__ import annotations

from typing import Any

from framedit_jax.models.flops import attention_flops, matmul
from framedit_jax.models.registry import model_config


def _mha_linear(tokens: int, d: int) -> int:
  return matmul(tokens, d, 3 * d) + matmul(tokens, d, d)


def _attention_kind(kind: str, b: int, t: int, n: int, d: int, cond_token: bool) -> int:
  """qkv/proj + attention of one 'spatial' / 'temporal' / 'split' sublayer on `(b, t, n, d)` tokens."""
  extra = int(cond_token)
  out = _mha_linear(b * t * n, d) + (matmul(b, d, 3 * d) if cond_token else 0)  # the condition token's qkv
  if kind == 'spatial':
    return out + attention_flops(b * t, n + extra, d)
  if kind == 'temporal':
    return out + attention_flops(b * n, t + extra, d)
  if kind == 'split':  # half the heads (width d/2) each way
    return out + attention_flops(b * t, n + extra, d // 2) + attention_flops(b * n, t + extra, d - d // 2)
  raise ValueError(f'unknown attention kind {kind!r}.')


def design_forward_flops(name: str, *, input_size: int = 32, num_frames: int = 16, batch_size: int = 1,
                         in_channels: int = 4, learn_sigma: bool = True, **options: Any) -> dict[str, int]:
  """Forward FLOPs by part ('embed', 'blocks', 'final', 'total') of a 'LatteV<k>-*' or 'VideoDiT-*' model.

  Args:
    name: registry name; options: patch_embed, tubelet_size, conditioning, temporal_pos, patchify_3d, and the
      architecture keys depth, hidden_size, num_heads, mlp_ratio.
    input_size: latent H = W (32 for 256^2 pixels with the SD VAE); num_frames: T.

  Raises:
    KeyError: unknown name. ValueError: unknown option value.
  """
  from framedit_jax.models.latte_design import block_kinds  # pylint: disable=g-import-not-at-top
  cfg = model_config(name)
  depth = options.get('depth', cfg['depth'])
  d = options.get('hidden_size', cfg['hidden_size'])
  p, mlp_ratio = cfg['patch_size'], options.get('mlp_ratio', 4.0)
  b, n = batch_size, (input_size // p)**2
  c_out = in_channels * (2 if learn_sigma else 1)
  embed_t = matmul(b, 256, d) + matmul(b, d, d)
  if name.startswith('VideoDiT-'):
    tokens = b * num_frames * n
    embed = matmul(tokens, p * p * in_channels, d) + embed_t
    if options.get('patchify_3d', True):
      embed += matmul(tokens, p * p * in_channels, d) + matmul(tokens, d, d)  # 3D branch conv + zero projection
    block = (matmul(b, d, 6 * d) + _mha_linear(tokens, d) + attention_flops(b, num_frames * n, d)
             + 2 * matmul(tokens, d, int(d * mlp_ratio)))
    parts = {'embed': embed, 'blocks': depth * block, 'final': matmul(b, d, 2 * d) + matmul(tokens, d, p * p * c_out)}
    parts['total'] = sum(parts.values())
    return parts
  s = options.get('tubelet_size', 2) if options.get('patch_embed', 'uniform') == 'tubelet' else 1
  if options.get('patch_embed', 'uniform') not in ('uniform', 'tubelet'):
    raise ValueError(f"patch_embed must be 'uniform' or 'tubelet', got {options['patch_embed']!r}.")
  conditioning = options.get('conditioning', 'adaln')
  if conditioning not in ('adaln', 'tokens'):
    raise ValueError(f"conditioning must be 'adaln' or 'tokens', got {conditioning!r}.")
  t = num_frames // s
  tokens = b * t * n
  blocks = 0
  for kinds in block_kinds(cfg['variant'], depth):
    if conditioning == 'adaln':
      blocks += matmul(b, d, 3 * (len(kinds) + 1) * d)
    for kind in kinds:
      blocks += _attention_kind(kind, b, t, n, d, conditioning == 'tokens')
    blocks += 2 * matmul(tokens, d, int(d * mlp_ratio))
  final = matmul(tokens, d, s * p * p * c_out) + (matmul(b, d, 2 * d) if conditioning == 'adaln' else 0)
  parts = {'embed': matmul(tokens, s * p * p * in_channels, d) + embed_t, 'blocks': blocks, 'final': final}
  parts['total'] = sum(parts.values())
  return parts


# The README table: (label, name, options, what it changes)
DESIGN_TABLE = (
    ('Variant 1 (default)', 'LatteV1-S/2', {}, 'interleaved spatial / temporal blocks (= Latte-S/2)'),
    ('Variant 2', 'LatteV2-S/2', {}, 'late fusion: depth/2 spatial blocks, then depth/2 temporal'),
    ('Variant 3', 'LatteV3-S/2', {}, 'depth/2 blocks of spatial then temporal attention + one MLP'),
    ('Variant 4', 'LatteV4-S/2', {}, 'one attention per block, half the heads spatial, half temporal'),
    ('Tubelet s=2', 'LatteV1-S/2', dict(patch_embed='tubelet', tubelet_size=2),
     '(2, p, p) patches: T/2 token frames, 3D transposed-conv decoder'),
    ('All tokens', 'LatteV1-S/2', dict(conditioning='tokens'),
     't/y as an extra attention token instead of S-AdaLN'),
    ('RoPE', 'LatteV1-S/2', dict(temporal_pos='rope'), 'rotary frame positions in temporal attention'),
    ('VideoDiT 2D->3D', 'VideoDiT-S/2', {}, 'DiT attention over all T*N tokens + 3D-patchify branch'),
)


def design_table(input_size: int = 32, num_frames: int = 16) -> list[tuple[str, str, str, float]]:
  """(label, name + options, what it changes, forward GFLOPs per video) for `DESIGN_TABLE` at S/2, 16 x 256^2."""
  rows = []
  for label, name, opts, what in DESIGN_TABLE:
    total = design_forward_flops(name, input_size=input_size, num_frames=num_frames, **opts)['total']
    desc = name + ''.join(f' {k}={v}' for k, v in opts.items())
    rows.append((label, desc, what, total / 1e9))
  return rows

"""Prompt -> T5 token embeddings, jitted, in chunks, in bfloat16 or float32.

    enc = TextEncoder.from_pretrained('/ckpt/Latte-1')      # reads text_encoder/ and tokenizer/
    emb, mask = enc.encode(['a cat', 'a dog'])              # (2, 120, 4096) float32, (2, 120) int32
"""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from framedit_jax.text.convert import load_t5_encoder
from framedit_jax.text.t5 import T5Config, T5Encoder
from framedit_jax.text.tokenizer import DEFAULT_MAX_LENGTH, T5Tokenizer

_DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


class TextEncoder:
  """A tokenizer plus a `T5Encoder` with its params.

  Args:
    tokenizer: `T5Tokenizer`.
    config: `T5Config`.
    params: `T5Encoder` params (float32; cast to `dtype` once here).
    dtype: 'bfloat16' (default; weights and matmuls in bf16, norms/softmax/residuals in fp32) or 'float32'.
    chunk_size: prompts encoded per jitted call (bounds activation memory; the last chunk is padded).
  """

  def __init__(self, tokenizer: T5Tokenizer, config: T5Config, params: Any, dtype: str = 'bfloat16',
               chunk_size: int = 8):
    if dtype not in _DTYPES:
      raise ValueError(f'dtype must be one of {sorted(_DTYPES)}, got {dtype!r}.')
    if chunk_size < 1:
      raise ValueError(f'chunk_size must be >= 1, got {chunk_size}.')
    self.tokenizer, self.config, self.chunk_size = tokenizer, config, int(chunk_size)
    jdtype = _DTYPES[dtype]
    # Norm weights and the relative bias stay float32; matrices go to the compute dtype.
    self.params = jax.tree_util.tree_map_with_path(
        lambda p, v: jnp.asarray(v, jdtype if p[-1].key in ('kernel', 'embedding') else jnp.float32), params)
    module = T5Encoder(config, dtype=jdtype)
    self._apply = jax.jit(lambda prm, ids, m: module.apply({'params': prm}, ids, m))

  @classmethod
  def from_pretrained(cls, root: str, max_length: int = DEFAULT_MAX_LENGTH, **kwargs) -> 'TextEncoder':
    """Loads `<root>/tokenizer/` (spiece.model) and `<root>/text_encoder/` (config.json + weights).

    Raises:
      FileNotFoundError: either folder missing (one line naming the folder expected).
    """
    for sub in ('tokenizer', 'text_encoder'):
      if not os.path.isdir(os.path.join(root, sub)):
        raise FileNotFoundError(f'{os.path.join(root, sub)} not found; the T2V checkpoint root must hold '
                                '`tokenizer/` (spiece.model) and `text_encoder/` (T5 config.json + weights).')
    tokenizer = T5Tokenizer(os.path.join(root, 'tokenizer'), max_length)
    config, params = load_t5_encoder(os.path.join(root, 'text_encoder'))
    return cls(tokenizer, config, params, **kwargs)

  def encode_ids(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """int `(B, L)` ids and mask -> float32 `(B, L, d_model)`, `chunk_size` rows per jitted call."""
    b = input_ids.shape[0]
    out = []
    for start in range(0, b, self.chunk_size):
      ids = input_ids[start:start + self.chunk_size]
      mask = attention_mask[start:start + self.chunk_size]
      n = ids.shape[0]
      if n < self.chunk_size:  # keep one compiled shape
        ids = np.concatenate([ids, np.repeat(ids[-1:], self.chunk_size - n, 0)])
        mask = np.concatenate([mask, np.repeat(mask[-1:], self.chunk_size - n, 0)])
      out.append(np.asarray(self._apply(self.params, jnp.asarray(ids), jnp.asarray(mask)), np.float32)[:n])
    return np.concatenate(out) if out else np.zeros((0, input_ids.shape[1], self.config.d_model), np.float32)

  def encode(self, prompts: str | list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Prompts -> `(embeddings (B, L, d_model) float32, attention_mask (B, L) int32)`; long prompts are
    truncated to the tokenizer's limit with a warning."""
    ids, mask = self.tokenizer(prompts)
    return self.encode_ids(ids, mask), mask

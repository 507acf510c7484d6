"""Text-embedding cache: every distinct caption of a dataset encoded once (like the latent cache), plus the
null (empty) prompt used for caption dropout / classifier-free guidance.

File `<path>` (.npz): `embeddings` float16 `(M, L, C)`, `masks` int8 `(M, L)`, `captions` (M,) str,
`null_embedding` float16 `(L, C)`, `null_mask` int8 `(L,)`. Row order = sorted distinct captions.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np


class TextCache:
  """Caption -> (embedding, mask) lookups on a loaded cache (see module docstring for the arrays)."""

  def __init__(self, embeddings, masks, captions, null_embedding, null_mask):
    self.embeddings, self.masks = embeddings, masks
    self.captions = [str(c) for c in captions]
    self.null_embedding, self.null_mask = null_embedding, null_mask
    self.index = {c: i for i, c in enumerate(self.captions)}

  def lookup(self, captions: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """float32 `(B, L, C)` embeddings and int32 `(B, L)` masks of cached captions.

    Raises:
      KeyError: a caption that is not in the cache (one line; rebuild the cache).
    """
    try:
      rows = [self.index[c] for c in captions]
    except KeyError as e:
      raise KeyError(f'caption {e.args[0]!r} is not in the text-embedding cache; rebuild it.') from None
    return self.embeddings[rows].astype(np.float32), self.masks[rows].astype(np.int32)


def build_text_cache(captions: Sequence[str], encoder, path: str, *, write: bool = True) -> TextCache:
  """Encodes the distinct `captions` and the empty prompt with `encoder` (a `TextEncoder`) and writes `path`.

  The file is written atomically (a temporary file renamed into place); `write=False` (every process but the
  first of a multi-host run) only returns the cache.
  Returns:
    The `TextCache` (also readable later with `load_text_cache(path)`).
  """
  unique = sorted(set(str(c) for c in captions))
  emb, mask = encoder.encode(unique + [''])
  cache = TextCache(emb[:-1].astype(np.float16), mask[:-1].astype(np.int8), unique, emb[-1].astype(np.float16),
                    mask[-1].astype(np.int8))
  if not write:
    return cache
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = f'{path}.tmp{os.getpid()}.npz'
  np.savez(tmp, embeddings=cache.embeddings, masks=cache.masks, captions=np.asarray(unique, dtype=str),
           null_embedding=cache.null_embedding, null_mask=cache.null_mask)
  os.replace(tmp, path)
  return cache


def load_text_cache(path: str) -> TextCache:
  """Reads a cache written by `build_text_cache`.

  Raises:
    FileNotFoundError: no file at `path` (one line naming it).
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f'text-embedding cache {path} not found; build it with build_text_cache.')
  d = np.load(path)
  return TextCache(d['embeddings'], d['masks'], d['captions'], d['null_embedding'], d['null_mask'])

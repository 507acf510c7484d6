"""Deterministic pseudo-random weights from an integer hash (no RNG stream), shared by parity tools and tests.

A fixture then needs only inputs and reference outputs: ``hash_weights`` regenerates the exact float32 weights
the reference model ran with, on any platform and numpy version.
"""

import zlib

import numpy as np


def hash_codes(name: str, shape, levels: int = 15) -> np.ndarray:
  """int codes in [-(levels//2), levels//2] from a murmur-style hash of (name, element index)."""
  n = int(np.prod(shape)) if len(shape) else 1
  salt = np.uint64(zlib.crc32(name.encode()))
  with np.errstate(over='ignore'):
    h = np.arange(n, dtype=np.uint64) * np.uint64(2654435761) + salt * np.uint64(40503) + np.uint64(12345)
    h ^= h >> np.uint64(13)
    h = (h * np.uint64(0x5BD1E995)) & np.uint64(0xFFFFFFFF)
    h ^= h >> np.uint64(15)
  return ((h >> np.uint64(8)) % np.uint64(levels)).astype(np.int64).reshape(shape) - levels // 2


def hash_tensor(name: str, shape, std: float, offset: float = 0.0) -> np.ndarray:
  """float32 tensor = codes * scale + offset with uniform-code std ~ ``std`` (exact in float32)."""
  scale = np.float32(std * np.sqrt(3.0) / 7.0)
  return (hash_codes(name, shape).astype(np.float32) * scale + np.float32(offset)).astype(np.float32)


def fan_in_std(shape) -> float:
  """He-style std sqrt(2 / fan_in) for (out, in, ...) weights; 0.1 for vectors."""
  if len(shape) < 2:
    return 0.1
  return float(np.sqrt(2.0 / (int(np.prod(shape[1:])))))

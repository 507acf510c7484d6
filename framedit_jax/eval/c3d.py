"""C3D (Sports-1M, fine-tuned on UCF-101) for the UCF-101 Inception Score, in Flax linen (NTHWC).

Network: Tran et al. 2015 ("Learning Spatiotemporal Features with 3D Convolutional Networks"), the
``C3DVersion1`` model that TGAN / TGANv2 (pfnet-research/tgan2) use for the UCF-101 IS; StyleGAN-V ships a
TorchScript export of it (``c3d_ucf101.pt``) whose built-in preprocessing is not verified here:

  conv1a 64 -> pool1 (1,2,2) -> conv2a 128 -> pool2 (2,2,2) -> conv3a/3b 256 -> pool3 -> conv4a/4b 512
  -> pool4 -> conv5a/5b 512 -> pool5 (2,2,2) in ceil mode (Chainer ``cover_all`` / Caffe: 7 -> 4)
  -> flatten in (C, T, H, W) order (8192) -> fc6 4096 -> fc7 4096 -> fc8 101 logits.

All convs are 3x3x3, stride 1, padding 1, with bias, each followed by ReLU (fc6/fc7 too; dropout is off at
inference).

Input protocol (TGANv2's IS script):
16 frames in [0, 255], each frame resized to 128x128 (OpenCV bicubic), RGB -> BGR, minus the Sports-1M mean
clip (``mean2.npz``: (3, 16, 128, 171) BGR, centre 128 columns), centre crop 112x112, then the network; IS
from the softmax of the 101 logits (``fid.inception_score``).

Weights and the mean clip are user-supplied; see ``load_c3d``.
"""

from __future__ import annotations

import functools
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from framedit_jax.convert import weights

NUM_FRAMES = 16
RESIZE = 128
CROP = 112
NUM_CLASSES = 101
CONV_CHANNELS = (('conv1a', 64), ('conv2a', 128), ('conv3a', 256), ('conv3b', 256), ('conv4a', 512),
                 ('conv4b', 512), ('conv5a', 512), ('conv5b', 512))
FC = (('fc6', 4096), ('fc7', 4096), ('fc8', NUM_CLASSES))
WEIGHTS_HINT = ('the C3D UCF-101 weights of TGANv2 (conv3d_deepnetA_ucf.npz, Chainer) or a PyTorch state dict '
                'with conv1a..conv5b/fc6..fc8 tensors (e.g. StyleGAN-V c3d_ucf101.pt)')


class C3D(nn.Module):
  """C3D classifier.

  Input: (B, 16, 112, 112, 3) float32, already preprocessed (``preprocess``: BGR, mean subtracted, [0, 255]).
  Output: (B, 101) UCF-101 logits (before softmax).
  """
  num_classes: int = NUM_CLASSES

  @nn.compact
  def __call__(self, x):
    for name, ch in CONV_CHANNELS:
      x = nn.relu(nn.Conv(ch, (3, 3, 3), padding=((1, 1),) * 3, name=name)(x))
      if name == 'conv1a':
        x = nn.max_pool(x, (1, 2, 2), strides=(1, 2, 2))
      elif name in ('conv2a', 'conv3b', 'conv4b'):
        x = nn.max_pool(x, (2, 2, 2), strides=(2, 2, 2))
    # pool5 in ceil mode: pad the end of H and W with -inf so 7 -> 4 windows, (B, 1, 4, 4, 512).
    x = nn.max_pool(x, (2, 2, 2), strides=(2, 2, 2), padding=((0, 0), (0, x.shape[2] % 2), (0, x.shape[3] % 2)))
    x = jnp.transpose(x, (0, 4, 1, 2, 3)).reshape(x.shape[0], -1)  # (B, C*T*H*W) in Caffe/Chainer order
    x = nn.relu(nn.Dense(4096, name='fc6')(x))
    x = nn.relu(nn.Dense(4096, name='fc7')(x))
    return nn.Dense(self.num_classes, name='fc8')(x)


def _cubic_matrix_cv2(n_in: int, n_out: int, a: float = -0.75) -> np.ndarray:
  """(n_out, n_in) weights of OpenCV ``INTER_CUBIC`` (Keys a=-0.75, half-pixel centres, replicated border)."""
  src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
  x0 = np.floor(src).astype(np.int64)
  t = src - x0
  w = np.stack([((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a,
                ((a + 2) * t - (a + 3)) * t * t + 1,
                ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1], axis=1)
  w = np.concatenate([w, 1 - w.sum(axis=1, keepdims=True)], axis=1)  # (n_out, 4) for offsets -1..2
  m = np.zeros((n_out, n_in), np.float64)
  for k in range(4):
    np.add.at(m, (np.arange(n_out), np.clip(x0 - 1 + k, 0, n_in - 1)), w[:, k])
  return m.astype(np.float32)


def resize_cubic_cv2(frames, size: int):
  """(..., H, W, C) -> (..., size, size, C), OpenCV-style bicubic (float arithmetic, no rounding)."""
  mh = jnp.asarray(_cubic_matrix_cv2(frames.shape[-3], size))
  mw = jnp.asarray(_cubic_matrix_cv2(frames.shape[-2], size))
  hp = jax.lax.Precision.HIGHEST
  x = jnp.einsum('oh,...hwc->...owc', mh, frames, precision=hp)
  return jnp.einsum('pw,...owc->...opc', mw, x, precision=hp)


def preprocess(videos, mean):
  """TGANv2 C3D input pipeline.

  Args:
    videos: (B, T, H, W, 3) RGB, ``uint8`` in [0, 255] or float in [-1, 1]; T >= 16 (first 16 frames used).
    mean: (16, 128, 128, 3) BGR Sports-1M mean clip in [0, 255] (``load_c3d`` returns it in this layout).

  Returns:
    (B, 16, 112, 112, 3) float32 network input. Frames not already 128x128 are resized with OpenCV-style
    bicubic; uint8 inputs are rounded and clipped back to [0, 255] after resizing, as ``cv2.resize`` does.

  Raises:
    ValueError: wrong rank/channels or fewer than 16 frames.
  """
  if videos.ndim != 5 or videos.shape[-1] != 3:
    raise ValueError(f'C3D input must be (B, T, H, W, 3), got shape {tuple(videos.shape)}.')
  if videos.shape[1] < NUM_FRAMES:
    raise ValueError(f'C3D needs {NUM_FRAMES} frames per video, got T={videos.shape[1]}; sample longer clips.')
  is_uint8 = videos.dtype == jnp.uint8
  x = videos[:, :NUM_FRAMES].astype(jnp.float32)
  x = x if is_uint8 else (x + 1.0) * 127.5
  if x.shape[2:4] != (RESIZE, RESIZE):
    x = resize_cubic_cv2(x, RESIZE)
    if is_uint8:
      x = jnp.clip(jnp.round(x), 0.0, 255.0)
  x = x[..., ::-1] - jnp.asarray(mean, jnp.float32)[None]  # BGR, minus the mean clip
  o = (RESIZE - CROP) // 2
  return x[:, :, o:o + CROP, o:o + CROP]


# --------------------------------------------------------------------------------------------------------
# Weights.


def _read_arrays(path: str, what: str) -> dict[str, np.ndarray]:
  """A weights / mean file -> arrays (``framedit_jax.convert.weights.read_state_dict``; ``.npy``: ``{'mean'}``)."""
  if path.endswith('.npy'):
    try:
      return {'mean': np.load(path, allow_pickle=False)}
    except Exception as e:  # pylint: disable=broad-except
      raise ValueError(f'{what}={path}: not a readable .npy ({type(e).__name__}); pass mean2.npz from TGANv2.') from e
  return weights.read_state_dict(path, f'{what}={path}')


@functools.lru_cache(maxsize=1)
def _expected_shapes() -> dict[tuple[str, ...], tuple[int, ...]]:
  return weights.flat_shapes(jax.eval_shape(lambda: C3D().init(jax.random.PRNGKey(0),
                                                                jnp.zeros((1, NUM_FRAMES, CROP, CROP, 3)))))


_ALIASES = {'conv1': 'conv1a', 'conv2': 'conv2a'}  # c3d-pytorch names the single convs without 'a'


def convert_state_dict(arrays: dict[str, np.ndarray], source: str = 'state dict') -> dict:
  """Chainer (``conv1a/W``, ``fc6/b``) or PyTorch (``conv1a.weight``) C3D tensors -> Flax variables.

  Conv kernels (O, I, T, H, W) -> (T, H, W, I, O); Linear (out, in) -> (in, out) (fc6's input order is
  (C, T, H, W) in both, as in our module). Prefixes such as ``predictor/`` or ``module.`` are ignored.

  Raises:
    ValueError: missing or mis-shaped tensors (one line).
  """
  layers = dict(CONV_CHANNELS + FC)

  def rename(key):
    parts = key.replace('/', '.').split('.')
    if len(parts) < 2:
      return weights.SKIP
    layer, leaf = _ALIASES.get(parts[-2], parts[-2]), parts[-1]
    if layer not in layers or leaf not in ('W', 'weight', 'b', 'bias'):
      return weights.SKIP
    if leaf in ('W', 'weight'):
      return ('params', layer, 'kernel'), 'kernel'
    return ('params', layer, 'bias'), 'copy'

  return weights.to_flax(arrays, _expected_shapes(), rename, f'{source} is not a C3D UCF-101 checkpoint',
                         hint=f'expected {WEIGHTS_HINT}')


def convert_mean(mean) -> np.ndarray:
  """Sports-1M mean clip -> (16, 128, 128, 3) BGR.

  Accepts (3, 16, 128, 171) / (1, 3, 16, 128, 171) (``mean2.npz`` 'mean', TGANv2 takes columns 21:149),
  (3, 16, 128, 128) or already converted (16, 128, 128, 3).

  Raises:
    ValueError: any other shape.
  """
  m = np.asarray(mean, np.float32)
  if m.ndim == 5 and m.shape[0] == 1:
    m = m[0]
  if m.shape == (NUM_FRAMES, RESIZE, RESIZE, 3):
    return m
  if m.ndim == 4 and m.shape[:3] == (3, NUM_FRAMES, RESIZE) and m.shape[3] >= RESIZE:
    o = (m.shape[3] - RESIZE) // 2
    return m[:, :, :, o:o + RESIZE].transpose(1, 2, 3, 0)
  raise ValueError(f'C3D mean clip has shape {m.shape}; expected (3, 16, 128, 171) from mean2.npz.')


def load_c3d(weights_path: str, mean_path: str | None = None) -> tuple[dict, np.ndarray]:
  """Loads user-supplied C3D UCF-101 weights and the Sports-1M mean clip.

  Args:
    weights_path: Chainer ``.npz``, PyTorch ``.pt/.pth`` state dict (torch imported lazily, ``weights_only=True``;
      a TorchScript archive is refused: re-save its ``state_dict()``) or ``.safetensors``. May also hold the mean
      clip under ``mean``.
    mean_path: ``mean2.npz`` (key ``mean``) or ``.npy``; needed unless ``weights_path`` holds ``mean``.

  Returns:
    (Flax variables for ``C3D``, (16, 128, 128, 3) BGR mean clip).

  Raises:
    FileNotFoundError: a missing file (one line naming --c3d_weights / --c3d_mean and the expected file).
    ValueError: the files hold other tensors.
  """
  if not weights_path or not os.path.exists(weights_path):
    raise FileNotFoundError(f'C3D weights {weights_path!r} not found: pass --c3d_weights=FILE with {WEIGHTS_HINT}.')
  arrays = _read_arrays(weights_path, '--c3d_weights')
  if 'mean' not in arrays:
    if not mean_path or not os.path.exists(mean_path):
      raise FileNotFoundError(f'C3D mean clip {mean_path!r} not found and {weights_path} holds no "mean": pass '
                              '--c3d_mean=mean2.npz (Sports-1M mean, (3, 16, 128, 171), from TGANv2).')
    m = _read_arrays(mean_path, '--c3d_mean')
    if 'mean' not in m:
      raise ValueError(f'{mean_path} has no "mean" array; expected mean2.npz from TGANv2.')
    arrays['mean'] = m['mean']
  return convert_state_dict(arrays, weights_path), convert_mean(arrays['mean'])


class C3DFeatureExtractor:
  """Batched, jitted C3D logits: (B, T, H, W, 3) videos (T >= 16) -> (B, 101) float32 logits.

  Args:
    variables, mean: from ``load_c3d``; default: loaded from ``weights_path`` / ``mean_path``.
    batch_size: videos per jitted call (the last chunk is zero-padded).
  """

  def __init__(self, variables=None, mean=None, weights_path: str | None = None, mean_path: str | None = None,
               batch_size: int = 8):
    if variables is None or mean is None:
      variables, mean = load_c3d(weights_path, mean_path)
    self.variables = jax.tree_util.tree_map(jnp.asarray, variables)
    self.mean = jnp.asarray(convert_mean(mean))
    self.batch_size = int(batch_size)
    model = C3D()
    self._forward = jax.jit(lambda v, m, x: model.apply(v, preprocess(x, m)))

  def __call__(self, videos) -> np.ndarray:
    videos = np.asarray(videos)
    if videos.ndim != 5 or videos.shape[1] < NUM_FRAMES:
      raise ValueError(f'C3D needs (B, T>={NUM_FRAMES}, H, W, 3) videos, got shape {videos.shape}.')
    videos = videos[:, :NUM_FRAMES]
    out = []
    for s in range(0, videos.shape[0], self.batch_size):
      chunk = videos[s:s + self.batch_size]
      n = chunk.shape[0]
      if n < self.batch_size:
        chunk = np.concatenate([chunk, np.zeros((self.batch_size - n,) + chunk.shape[1:], chunk.dtype)])
      out.append(np.asarray(self._forward(self.variables, self.mean, chunk))[:n])
    return np.concatenate(out) if out else np.zeros((0, NUM_CLASSES), np.float32)

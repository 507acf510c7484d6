"""InceptionV3 for FID and IS, in the pytorch-fid layout (Flax linen, NHWC), plus its weight loader.

Architecture: Szegedy et al. 2016 ("Rethinking the Inception Architecture"), in the variant that reproduces
the TensorFlow FID graph (``pt_inception-2015-12-05``), as defined by pytorch-fid's ``FIDInceptionA/C/E_1/E_2``:

* every unit is conv (no bias) + BatchNorm (eps 1e-3, inference statistics) + ReLU (``BasicConv2d``);
* the average-pool branches of Mixed_5b-5d, 6b-6e and 7b exclude padded zeros (``count_include_pad=False``),
  as TensorFlow's average pool does;
* the pool branch of Mixed_7c uses a 3x3 *max* pool (stride 1, pad 1), as the TF FID graph does;
* 299x299 input -> Mixed_7c (8, 8, 2048) -> global average pool -> ``pool`` (the 2048-d FID features) ->
  ``fc`` (2048 -> 1008) -> ``logits`` (1008 classes; index 0 is TF's background class).

The official FrameDiT code (``tools/metrics/fid.py`` via ``torchmetrics`` ``NoTrainInceptionV3``, i.e.
torch-fidelity's ``inception-v3-compat``) uses the same weights and network but a different input path
(uint8 -> TF1-style bilinear resize -> ``(x - 128) / 128``); ``preprocess(mode='torch_fidelity')`` offers it.

Weights are user-supplied (no registry here has them): pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``
or a ``.npz`` / ``.safetensors`` holding the same tensor names; see ``load_inception_variables``.
"""

from __future__ import annotations

import functools
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from framedit_jax.convert import weights

INPUT_SIZE = 299
POOL_DIM = 2048
NUM_CLASSES = 1008
WEIGHTS_NAME = 'pt_inception-2015-12-05-6726825d.pth'
WEIGHTS_URL = ('https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/'
               'pt_inception-2015-12-05-6726825d.pth')


class BasicConv(nn.Module):
  """Conv (no bias) + BatchNorm (eps 1e-3, running stats) + ReLU; (N, H, W, C) in/out."""
  features: int
  kernel: tuple[int, int] = (1, 1)
  strides: tuple[int, int] = (1, 1)
  padding: tuple[int, int] = (0, 0)

  @nn.compact
  def __call__(self, x):
    (ph, pw) = self.padding
    x = nn.Conv(self.features, self.kernel, strides=self.strides, padding=((ph, ph), (pw, pw)),
                use_bias=False, name='conv')(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name='bn')(x)
    return nn.relu(x)


def _avg_pool_3x3_no_pad(x):
  # TF average pooling: the mean over the in-image part of each window.
  return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_3x3_s2(x):
  return nn.max_pool(x, (3, 3), strides=(2, 2), padding='VALID')


class InceptionA(nn.Module):
  """Mixed_5b/5c/5d: 1x1 | 1x1->5x5 | 1x1->3x3->3x3 | avgpool->1x1 (64 + 64 + 96 + pool_features)."""
  pool_features: int

  @nn.compact
  def __call__(self, x):
    b1 = BasicConv(64, name='branch1x1')(x)
    b5 = BasicConv(48, name='branch5x5_1')(x)
    b5 = BasicConv(64, (5, 5), padding=(2, 2), name='branch5x5_2')(b5)
    b3 = BasicConv(64, name='branch3x3dbl_1')(x)
    b3 = BasicConv(96, (3, 3), padding=(1, 1), name='branch3x3dbl_2')(b3)
    b3 = BasicConv(96, (3, 3), padding=(1, 1), name='branch3x3dbl_3')(b3)
    bp = BasicConv(self.pool_features, name='branch_pool')(_avg_pool_3x3_no_pad(x))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
  """Mixed_6a (35 -> 17): 3x3/2 | 1x1->3x3->3x3/2 | maxpool 3x3/2."""

  @nn.compact
  def __call__(self, x):
    b3 = BasicConv(384, (3, 3), (2, 2), name='branch3x3')(x)
    bd = BasicConv(64, name='branch3x3dbl_1')(x)
    bd = BasicConv(96, (3, 3), padding=(1, 1), name='branch3x3dbl_2')(bd)
    bd = BasicConv(96, (3, 3), (2, 2), name='branch3x3dbl_3')(bd)
    return jnp.concatenate([b3, bd, _max_pool_3x3_s2(x)], axis=-1)


class InceptionC(nn.Module):
  """Mixed_6b-6e: factorised 7x7 branches with ``channels_7x7`` inner width; 4 x 192 output channels."""
  channels_7x7: int

  @nn.compact
  def __call__(self, x):
    c7 = self.channels_7x7
    b1 = BasicConv(192, name='branch1x1')(x)
    b7 = BasicConv(c7, name='branch7x7_1')(x)
    b7 = BasicConv(c7, (1, 7), padding=(0, 3), name='branch7x7_2')(b7)
    b7 = BasicConv(192, (7, 1), padding=(3, 0), name='branch7x7_3')(b7)
    bd = BasicConv(c7, name='branch7x7dbl_1')(x)
    bd = BasicConv(c7, (7, 1), padding=(3, 0), name='branch7x7dbl_2')(bd)
    bd = BasicConv(c7, (1, 7), padding=(0, 3), name='branch7x7dbl_3')(bd)
    bd = BasicConv(c7, (7, 1), padding=(3, 0), name='branch7x7dbl_4')(bd)
    bd = BasicConv(192, (1, 7), padding=(0, 3), name='branch7x7dbl_5')(bd)
    bp = BasicConv(192, name='branch_pool')(_avg_pool_3x3_no_pad(x))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
  """Mixed_7a (17 -> 8): 1x1->3x3/2 | 1x1->1x7->7x1->3x3/2 | maxpool 3x3/2."""

  @nn.compact
  def __call__(self, x):
    b3 = BasicConv(192, name='branch3x3_1')(x)
    b3 = BasicConv(320, (3, 3), (2, 2), name='branch3x3_2')(b3)
    b7 = BasicConv(192, name='branch7x7x3_1')(x)
    b7 = BasicConv(192, (1, 7), padding=(0, 3), name='branch7x7x3_2')(b7)
    b7 = BasicConv(192, (7, 1), padding=(3, 0), name='branch7x7x3_3')(b7)
    b7 = BasicConv(192, (3, 3), (2, 2), name='branch7x7x3_4')(b7)
    return jnp.concatenate([b3, b7, _max_pool_3x3_s2(x)], axis=-1)


class InceptionE(nn.Module):
  """Mixed_7b (``pool='avg'``, padded zeros excluded) and Mixed_7c (``pool='max'``); 2048 output channels."""
  pool: str = 'avg'

  @nn.compact
  def __call__(self, x):
    b1 = BasicConv(320, name='branch1x1')(x)
    b3 = BasicConv(384, name='branch3x3_1')(x)
    b3 = jnp.concatenate([BasicConv(384, (1, 3), padding=(0, 1), name='branch3x3_2a')(b3),
                          BasicConv(384, (3, 1), padding=(1, 0), name='branch3x3_2b')(b3)], axis=-1)
    bd = BasicConv(448, name='branch3x3dbl_1')(x)
    bd = BasicConv(384, (3, 3), padding=(1, 1), name='branch3x3dbl_2')(bd)
    bd = jnp.concatenate([BasicConv(384, (1, 3), padding=(0, 1), name='branch3x3dbl_3a')(bd),
                          BasicConv(384, (3, 1), padding=(1, 0), name='branch3x3dbl_3b')(bd)], axis=-1)
    if self.pool == 'max':
      bp = nn.max_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))
    else:
      bp = _avg_pool_3x3_no_pad(x)
    bp = BasicConv(192, name='branch_pool')(bp)
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class InceptionV3(nn.Module):
  """FID InceptionV3.

  Input: (N, 299, 299, 3) float32 in [-1, 1] (use ``preprocess``; other sizes >= 75 run too).
  Output: dict with ``pool`` (N, 2048) FID features, ``logits`` (N, 1008) and ``logits_unbiased`` (N, 1008)
  (the fc layer without its bias, torch-fidelity's IS input).
  """
  num_classes: int = NUM_CLASSES

  @nn.compact
  def __call__(self, x):
    x = BasicConv(32, (3, 3), (2, 2), name='Conv2d_1a_3x3')(x)  # (N, 149, 149, 32)
    x = BasicConv(32, (3, 3), name='Conv2d_2a_3x3')(x)
    x = BasicConv(64, (3, 3), padding=(1, 1), name='Conv2d_2b_3x3')(x)
    x = _max_pool_3x3_s2(x)  # (N, 73, 73, 64)
    x = BasicConv(80, name='Conv2d_3b_1x1')(x)
    x = BasicConv(192, (3, 3), name='Conv2d_4a_3x3')(x)
    x = _max_pool_3x3_s2(x)  # (N, 35, 35, 192)
    x = InceptionA(32, name='Mixed_5b')(x)
    x = InceptionA(64, name='Mixed_5c')(x)
    x = InceptionA(64, name='Mixed_5d')(x)
    x = InceptionB(name='Mixed_6a')(x)  # (N, 17, 17, 768)
    for name, c7 in (('Mixed_6b', 128), ('Mixed_6c', 160), ('Mixed_6d', 160), ('Mixed_6e', 192)):
      x = InceptionC(c7, name=name)(x)
    x = InceptionD(name='Mixed_7a')(x)  # (N, 8, 8, 1280)
    x = InceptionE('avg', name='Mixed_7b')(x)
    x = InceptionE('max', name='Mixed_7c')(x)  # (N, 8, 8, 2048)
    pool = jnp.mean(x, axis=(1, 2))  # (N, 2048)
    fc = nn.Dense(self.num_classes, name='fc')
    logits = fc(pool)
    unbiased = logits - fc.variables['params']['bias']
    return {'pool': pool, 'logits': logits, 'logits_unbiased': unbiased}


def _resize_matrix_tf1(n_in: int, n_out: int) -> np.ndarray:
  """(n_out, n_in) weights of TF1 ``resize_bilinear(align_corners=False, half_pixel_centers=False)``."""
  src = np.arange(n_out, dtype=np.float64) * (n_in / n_out)
  x0 = np.floor(src).astype(np.int64)
  frac = src - x0
  x1 = np.minimum(x0 + 1, n_in - 1)
  w = np.zeros((n_out, n_in), np.float64)
  np.add.at(w, (np.arange(n_out), x0), 1.0 - frac)
  np.add.at(w, (np.arange(n_out), x1), frac)
  return w.astype(np.float32)


def resize_bilinear_tf1(images, size: int):
  """(N, H, W, C) -> (N, size, size, C) like TF1 ``tf.image.resize_bilinear`` (corner-aligned grid origin,
  source coordinate ``dst * in / out``, no antialias), which torch-fidelity reimplements for FID."""
  n, h, w, c = images.shape
  wh, ww = jnp.asarray(_resize_matrix_tf1(h, size)), jnp.asarray(_resize_matrix_tf1(w, size))
  hp = jax.lax.Precision.HIGHEST
  x = jnp.einsum('oh,nhwc->nowc', wh, images, precision=hp)
  return jnp.einsum('pw,nowc->nopc', ww, x, precision=hp)


def preprocess(images, mode: str = 'pytorch_fid', size: int = INPUT_SIZE):
  """Scales and resizes frames for ``InceptionV3``.

  Args:
    images: (N, H, W, 3) ``uint8`` in [0, 255] or float in [-1, 1] (the project's video convention).
    mode: ``'pytorch_fid'``: [0, 1] -> bilinear resize with half-pixel centres, no antialias
      (``F.interpolate(align_corners=False)``) -> ``2 x - 1``.
      ``'torch_fidelity'`` (official FrameDiT/torchmetrics FID): floats are first quantised as
      ``uint8(x01 * 255)`` (truncation, as the official code does), then TF1-style bilinear resize and
      ``(x - 128) / 128``.
    size: output height and width (299).

  Returns:
    (N, size, size, 3) float32.

  Raises:
    ValueError: wrong rank/channels or unknown mode.
  """
  if images.ndim != 4 or images.shape[-1] != 3:
    raise ValueError(f'Inception input must be (N, H, W, 3) frames, got shape {tuple(images.shape)}.')
  is_uint8 = images.dtype == jnp.uint8
  if mode == 'pytorch_fid':
    x = images.astype(jnp.float32) / 255.0 if is_uint8 else (images.astype(jnp.float32) + 1.0) / 2.0
    if images.shape[1:3] != (size, size):
      x = jax.image.resize(x, (x.shape[0], size, size, 3), method='bilinear', antialias=False)
    return 2.0 * x - 1.0
  if mode == 'torch_fidelity':
    if is_uint8:
      x = images.astype(jnp.float32)
    else:
      x = jnp.floor(jnp.clip((images.astype(jnp.float32) + 1.0) / 2.0, 0.0, 1.0) * 255.0)
    if images.shape[1:3] != (size, size):
      x = resize_bilinear_tf1(x, size)
    return (x - 128.0) / 128.0
  raise ValueError(f"unknown Inception preprocessing mode {mode!r}; use 'pytorch_fid' or 'torch_fidelity'.")


# --------------------------------------------------------------------------------------------------------
# Weights: pytorch-fid state dict names -> Flax variables.


def _missing_file_error(path, flag):
  return FileNotFoundError(
      f'InceptionV3 weights {path!r} not found: pass {flag}=/path/to/{WEIGHTS_NAME} (pytorch-fid FID '
      f'weights, {WEIGHTS_URL}) or a .npz/.safetensors with the same tensor names.')


def read_state_dict(path: str, flag: str = '--inception_weights') -> dict[str, np.ndarray]:
  """Reads a PyTorch-named state dict (``.pth``/``.pt`` with ``weights_only=True``, ``.npz``, ``.safetensors``)
  through ``framedit_jax.convert.weights.read_state_dict``.

  Raises:
    FileNotFoundError: ``path`` is empty or missing (one line naming ``flag`` and the expected file).
    ValueError: a damaged file or an unsafe pickle (refused before it runs), in one line.
  """
  if not path or not os.path.exists(path):
    raise _missing_file_error(path, flag)
  return weights.read_state_dict(path, f'{flag}={path}')


def _torch_to_flax_name(key: str):
  """'Mixed_5b.branch1x1.conv.weight' -> ('params', ('Mixed_5b', 'branch1x1', 'conv', 'kernel')) etc."""
  *mods, leaf = key.split('.')
  if mods and mods[-1] == 'bn':
    col, leaf = {'weight': ('params', 'scale'), 'bias': ('params', 'bias'),
                 'running_mean': ('batch_stats', 'mean'), 'running_var': ('batch_stats', 'var')}[leaf]
  else:
    col, leaf = 'params', {'weight': 'kernel', 'bias': 'bias'}[leaf]
  return col, tuple(mods) + (leaf,)


@functools.lru_cache(maxsize=1)
def _expected_shapes() -> dict[tuple[str, ...], tuple[int, ...]]:
  """('params', 'Mixed_5b', 'branch1x1', 'conv', 'kernel') -> shape, for every variable of ``InceptionV3``."""
  return weights.flat_shapes(jax.eval_shape(lambda: InceptionV3().init(jax.random.PRNGKey(0),
                                                                        jnp.zeros((1, 299, 299, 3)))))


def convert_state_dict(sd: dict[str, np.ndarray], source: str = 'state dict') -> dict:
  """pytorch-fid InceptionV3 state dict (numpy) -> Flax variables ``{'params', 'batch_stats'}``.

  Conv kernels OIHW -> HWIO, fc (out, in) -> (in, out); ``num_batches_tracked`` and ``AuxLogits.*``
  (torchvision's auxiliary head) are ignored.

  Raises:
    WeightsError (a ValueError): missing/unexpected tensors or wrong shapes (one line, ``weights.to_flax``).
  """
  def rename(key):
    if key.endswith('num_batches_tracked') or key.startswith('AuxLogits.'):
      return weights.SKIP
    try:
      col, path = _torch_to_flax_name(key)
    except (KeyError, ValueError):
      return None
    return (col,) + path, 'kernel' if path[-1] == 'kernel' else 'copy'

  return weights.to_flax(sd, _expected_shapes(), rename, f'{source} is not a pytorch-fid InceptionV3 state dict',
                         hint=f'expected {WEIGHTS_NAME} ({WEIGHTS_URL})')


def load_inception_variables(path: str, flag: str = '--inception_weights') -> dict:
  """Flax variables for ``InceptionV3`` from a user-supplied pytorch-fid weight file.

  Args:
    path: ``pt_inception-2015-12-05-6726825d.pth`` (or ``.npz``/``.safetensors`` with the same names).
    flag: the config field / flag named in the error message.

  Raises:
    FileNotFoundError: missing file (one line with the flag, the file name and where to get it).
    ValueError: the file holds other tensors.
  """
  return convert_state_dict(read_state_dict(path, flag), path)

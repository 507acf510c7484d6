"""LPIPS perceptual distance (Zhang et al. 2018, arXiv 1801.03924) in Flax, as the ``lpips`` package v0.1 computes it.

The official FrameDiT ``tools/cal_metrics.py`` reports LPIPS through torchmetrics ``NoTrainLpips(net='vgg')``
(= ``lpips.LPIPS(net='vgg', version='0.1')``), frame by frame between the generated and the real clips, averaged
over all frames. One image pair:

1. scaling layer: ``x' = (x - shift) / scale`` with shift (-.030, -.088, -.188), scale (.458, .448, .450),
   for x in [-1, 1] (lpips ``ScalingLayer``);
2. five ReLU feature maps of the ImageNet backbone (torchvision ``vgg16().features`` relu1_2, relu2_2, relu3_3,
   relu4_3, relu5_3; or ``alexnet().features`` relu1..relu5; lpips ``pretrained_networks.py``);
3. each map unit-normalised over channels, ``f / (||f||_2 + 1e-10)``; squared difference of the two images;
4. a learned 1x1 conv without bias to one channel (``lin0..lin4``), averaged over space, summed over layers.

Weights: the backbone is torchvision's ImageNet file (``vgg16-397923af.pth`` / ``alexnet-owt-7be5be79.pth``,
state_dict names ``features.<i>.weight``); the lin layers ship in the ``lpips`` package
(``lpips/weights/v0.1/<net>.pth``, names ``lin<k>.model.1.weight``). ``lpips_convert.py`` turns both into one .npz.
"""

from __future__ import annotations

import functools
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)

# torchvision `features` layout: ('conv', index, out_channels, kernel, stride, padding) / ('pool', kernel, stride);
# a ReLU follows every conv. TAPS: torchvision indices of the ReLUs lpips reads.
ARCH = {
    'vgg': dict(
        layers=[('conv', 0, 64, 3, 1, 1), ('conv', 2, 64, 3, 1, 1), ('pool', 2, 2),
                ('conv', 5, 128, 3, 1, 1), ('conv', 7, 128, 3, 1, 1), ('pool', 2, 2),
                ('conv', 10, 256, 3, 1, 1), ('conv', 12, 256, 3, 1, 1), ('conv', 14, 256, 3, 1, 1), ('pool', 2, 2),
                ('conv', 17, 512, 3, 1, 1), ('conv', 19, 512, 3, 1, 1), ('conv', 21, 512, 3, 1, 1), ('pool', 2, 2),
                ('conv', 24, 512, 3, 1, 1), ('conv', 26, 512, 3, 1, 1), ('conv', 28, 512, 3, 1, 1)],
        taps=(2, 7, 14, 21, 28),
        channels=(64, 128, 256, 512, 512)),
    'alex': dict(
        layers=[('conv', 0, 64, 11, 4, 2), ('pool', 3, 2), ('conv', 3, 192, 5, 1, 2), ('pool', 3, 2),
                ('conv', 6, 384, 3, 1, 1), ('conv', 8, 256, 3, 1, 1), ('conv', 10, 256, 3, 1, 1)],
        taps=(0, 3, 6, 8, 10),
        channels=(64, 192, 384, 256, 256)),
}

WEIGHTS_HINT = ('LPIPS needs the torchvision ImageNet backbone (vgg16-397923af.pth from '
                'https://download.pytorch.org/models/, or alexnet-owt-7be5be79.pth) and the lin layers of the `lpips` '
                'package (lpips/weights/v0.1/<net>.pth); convert both once with '
                '`python -m framedit_jax.eval.lpips_convert --backbone=... --net=vgg --out=lpips_vgg.npz`.')


def _check_net(net: str) -> None:
  if net not in ARCH:
    raise ValueError(f"LPIPS net must be one of {sorted(ARCH)}, got {net!r}.")


class LPIPSFeatures(nn.Module):
  """Backbone ReLU taps. (B, H, W, 3) scaled input -> five (B, h_k, w_k, C_k) maps (torchvision ``features``)."""
  net: str = 'vgg'

  @nn.compact
  def __call__(self, x):
    arch = ARCH[self.net]
    taps = []
    for layer in arch['layers']:
      if layer[0] == 'pool':
        _, k, s = layer
        x = nn.max_pool(x, (k, k), strides=(s, s), padding='VALID')  # torch MaxPool2d floor mode
        continue
      _, idx, ch, k, s, p = layer
      x = nn.Conv(ch, (k, k), strides=(s, s), padding=[(p, p), (p, p)], precision=jax.lax.Precision.HIGHEST,
                  name=f'features_{idx}')(x)
      x = nn.relu(x)
      if idx in arch['taps']:
        taps.append(x)
    return taps


class LPIPS(nn.Module):
  """LPIPS v0.1 distance. x, y: (B, H, W, 3) in [-1, 1] -> (B,) (lpips ``LPIPS.forward``, spatial=False)."""
  net: str = 'vgg'

  @nn.compact
  def __call__(self, x, y):
    shift, scale = jnp.asarray(SHIFT, jnp.float32), jnp.asarray(SCALE, jnp.float32)
    feats = LPIPSFeatures(self.net, name='net')
    b = x.shape[0]
    both = feats((jnp.concatenate([x, y], axis=0).astype(jnp.float32) - shift) / scale)
    total = jnp.zeros((b,), jnp.float32)
    for k, f in enumerate(both):
      f = f / (jnp.sqrt(jnp.sum(f * f, axis=-1, keepdims=True)) + 1e-10)
      d = (f[:b] - f[b:]) ** 2  # (B, h, w, C)
      lin = nn.Conv(1, (1, 1), use_bias=False, precision=jax.lax.Precision.HIGHEST, name=f'lin{k}')(d)
      total = total + jnp.mean(lin, axis=(1, 2, 3))
    return total


def load_lpips(weights: str | None, net: str | None = None) -> tuple[str, dict]:
  """Loads converted LPIPS weights.

  Args:
    weights: .npz written by ``lpips_convert.py`` (keys ``net/features_<i>/{kernel,bias}``, ``lin<k>/kernel``
      and ``__net__``).
    net: 'vgg' or 'alex'; if given it must match the file.

  Returns:
    (net, params) with params the Flax ``{'params': ...}`` tree of ``LPIPS(net)``.

  Raises:
    FileNotFoundError: ``weights`` is None or missing (the message says where the weights come from).
    ValueError: wrong net, or keys missing/unexpected for the net.
  """
  import os  # pylint: disable=g-import-not-at-top
  if not weights or not os.path.exists(weights):
    raise FileNotFoundError(f'LPIPS weights {weights!r} not found. {WEIGHTS_HINT}')
  from framedit_jax.convert import weights as reader  # pylint: disable=g-import-not-at-top
  arrays = dict(reader.read_state_dict(weights, 'LPIPS weights', prefixes=()))
  file_net = str(arrays.pop('__net__', np.array('vgg')))
  if net is not None and net != file_net:
    raise ValueError(f'LPIPS weights {weights} are for net={file_net!r}, not {net!r}.')
  _check_net(file_net)
  want = {tuple(k.split('/')): np.shape(arrays.get(k, np.zeros(0))) for k in expected_keys(file_net)}
  params = reader.to_flax(arrays, want, lambda k: (tuple(k.split('/')), 'copy'), f'LPIPS weights {weights}',
                          hint=WEIGHTS_HINT)
  params = jax.tree.map(lambda v: jnp.asarray(v, jnp.float32), params)
  return file_net, {'params': params}


def expected_keys(net: str) -> list[str]:
  """'/'-joined Flax parameter paths of ``LPIPS(net)``."""
  _check_net(net)
  keys = []
  for layer in ARCH[net]['layers']:
    if layer[0] == 'conv':
      keys += [f'net/features_{layer[1]}/kernel', f'net/features_{layer[1]}/bias']
  return keys + [f'lin{k}/kernel' for k in range(5)]


@functools.partial(jax.jit, static_argnums=0)
def _apply(net, params, x, y):
  return LPIPS(net).apply(params, x, y)


def lpips_distance(params: dict, x, y, net: str = 'vgg') -> jax.Array:
  """LPIPS of image pairs.

  Args:
    params: from ``load_lpips``.
    x, y: (B, H, W, 3) float images in [-1, 1] (H, W >= 32 for vgg, >= 63 for alex).
    net: the backbone the params are for.

  Returns:
    (B,) float32 distances (0 for identical images).

  Raises:
    ValueError: shapes differ or are not (B, H, W, 3).
  """
  _check_net(net)
  x, y = jnp.asarray(x), jnp.asarray(y)
  if x.shape != y.shape or x.ndim != 4 or x.shape[-1] != 3:
    raise ValueError(f'LPIPS inputs must both be (B, H, W, 3), got {x.shape} and {y.shape}.')
  return _apply(net, params, x, y)


def make_lpips_fn(weights: str, net: str | None = None) -> Callable[[jax.Array, jax.Array], jax.Array]:
  """``perceptual_fn(x, y) -> (B,)`` for (B, H, W, 3) images in [-1, 1]; jit-able, differentiable in x and y.

  Raises the errors of ``load_lpips``.
  """
  net, params = load_lpips(weights, net)

  def perceptual_fn(x, y):
    return LPIPS(net).apply(params, x, y)

  return perceptual_fn


def lpips_of_videos(params: dict, fakes, reals, net: str = 'vgg', batch_size: int = 32,
                    resolution: int | None = 256, max_pairs: int | None = None) -> float:
  """Mean frame LPIPS of paired clips, as the official FrameDiT ``cal_metrics.py`` (fake frame t vs real frame t).

  Args:
    params: from ``load_lpips``.
    fakes, reals: iterables of (T, H, W, 3) clips, uint8 (or float in [-1, 1]), paired in order (the shorter one
      sets the count).
    net: the backbone.
    batch_size: frames per call.
    resolution: clips are first made ``resolution`` x ``resolution`` as the official loader does
      (``resize.square_frames``; 256 in ``cal_metrics.py``); None keeps them as they are.
    max_pairs: use at most this many clip pairs.

  Returns:
    the mean LPIPS over all paired frames (each frame weighs the same).

  Raises:
    ValueError: no pairs, or (with ``resolution=None``) a pair whose shapes differ.
  """
  from framedit_jax.eval.resize import square_frames, to_0_255  # pylint: disable=g-import-not-at-top
  total, count, buf_x, buf_y = 0.0, 0, [], []

  def flush():
    nonlocal total, count
    if buf_x:
      d = lpips_distance(params, np.concatenate(buf_x) / 127.5 - 1.0, np.concatenate(buf_y) / 127.5 - 1.0, net)
      total += float(np.sum(np.asarray(d, np.float64)))
      count += sum(len(b) for b in buf_x)
      buf_x.clear()
      buf_y.clear()

  for i, (fake, real) in enumerate(zip(fakes, reals)):
    if max_pairs is not None and i >= max_pairs:
      break
    if resolution is not None:
      fake, real = square_frames(fake, resolution), square_frames(real, resolution)
    else:
      fake, real = to_0_255(fake), to_0_255(real)
    if fake.shape != real.shape:
      raise ValueError(f'LPIPS pairs fake and real clips frame by frame; shapes differ: {fake.shape} vs {real.shape}.')
    buf_x.append(fake)
    buf_y.append(real)
    if sum(len(b) for b in buf_x) >= batch_size:
      flush()
  flush()
  if not count:
    raise ValueError('LPIPS got no (fake, real) clip pairs.')
  return total / count

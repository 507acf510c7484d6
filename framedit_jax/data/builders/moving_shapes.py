"""`moving_shapes`: procedurally generated large-motion videos (no download; builds in seconds).

Each video shows 1-3 coloured shapes (discs or squares) on a plain or linear-gradient background. Every shape
moves at a constant speed of 1-4 px/frame at 32x32 (scaled with the frame size), in a random direction, and
bounces elastically off the walls (the velocity component normal to the wall flips; the speed is kept), so within
a 16-frame clip a shape typically crosses most of the frame. This is the regime the FrameDiT paper targets: a
shape leaves its 4x4 patch after one or two frames, so attention between the same spatial token across time
(Local Factorized) sees mostly background, while frame-level Matrix Attention and full 3D attention can relate
tokens at different positions.

Everything is a pure function of (builder config seed, split, video index): `video_spec` draws the parameters,
`trajectories` integrates the motion, `render` draws anti-aliased frames (4x4 supersampling per pixel) and each
shape's coverage mask. Frames are stored as JPEG (`tfds.features.Video`, 4:4:4 chroma, quality 95) like every
other builder, with label 0 and fps 8, plus the ground truth: per-frame shape centres ``(T, MAX_SHAPES, 2)`` in
pixels as (x, y) with pixel i covering [i, i + 1) (so a centre at 16.0 lies on the border of pixels 15 and 16),
radii / half-sides, kinds, colours and velocities; unused shape slots hold NaN centres and 0 sizes.
"""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import tensorflow_datasets as tfds

from framedit_jax.data import decode
from framedit_jax.data.builders import base

MAX_SHAPES = 3
KINDS = ('disc', 'square')
SPLIT_IDS = {'train': 0, 'test': 1}
SUPERSAMPLE = 4


@dataclasses.dataclass
class MovingShapesConfig(tfds.core.BuilderConfig):
  """size: frame side in pixels; speeds (min, max) are px/frame at 32x32 and scale with `size / 32`.

  max_shapes: 1..MAX_SHAPES shapes per video; plain_background: no gradients; monochrome: white shapes on black
  (the other draws unchanged; only position, size, kind and motion vary). speed_classes: when set, video i of a
  split belongs to class c = i % len(speed_classes), moves at a speed drawn from speed_classes[c] = (min, max) in
  px/frame *of this frame size* (not scaled) instead of (min_speed, max_speed), and is labelled c (otherwise
  every label is 0). kind / radius: when set, every shape is this kind ('disc' or 'square') with this radius or
  half-side in px of this frame (the other draws unchanged: only position and motion vary).
  """
  size: int = 32
  num_frames: int = 64
  num_train: int = 256
  num_test: int = 64
  min_speed: float = 1.0
  max_speed: float = 4.0
  seed: int = 0
  jpeg_quality: int = 95
  max_shapes: int = MAX_SHAPES
  plain_background: bool = False
  speed_classes: tuple = ()
  monochrome: bool = False
  kind: str | None = None
  radius: float | None = None


@dataclasses.dataclass(frozen=True)
class VideoSpec:
  """Parameters of one video (all positions/sizes in pixels of a `size` x `size` frame)."""
  size: int
  num_frames: int
  kinds: tuple  # (n,) indices into KINDS
  radii: np.ndarray  # (n,) disc radius or square half-side
  colors: np.ndarray  # (n, 3) uint8-range floats
  start: np.ndarray  # (n, 2) initial centres (x, y)
  velocity: np.ndarray  # (n, 2) initial velocities (px/frame)
  background: np.ndarray  # (2, 3) colours at the two ends of the gradient (equal for a plain background)
  gradient_dir: np.ndarray  # (2,) unit vector of the gradient


def video_spec(rng: np.random.Generator, size: int = 32, num_frames: int = 64, min_speed: float = 1.0,
               max_speed: float = 4.0, max_shapes: int = MAX_SHAPES, plain_background: bool = False,
               monochrome: bool = False, kind: str | None = None, radius: float | None = None) -> VideoSpec:
  """Draws one video's parameters (shapes fully inside the frame, colours far from the background).

  max_shapes: at most this many shapes (1..MAX_SHAPES); plain_background: never a gradient; monochrome: white
  shapes on a black background; kind / radius: every shape of this kind and radius (px of this frame; the draws
  are still made, so the positions and motions match the config without them). At their defaults the draws are those of the first release, so the s32 / s64 /
  tiny videos are unchanged.
  """
  if not 1 <= max_shapes <= MAX_SHAPES:
    raise ValueError(f'max_shapes must be in 1..{MAX_SHAPES}, got {max_shapes}.')
  scale = size / 32.0
  n = int(rng.integers(1, max_shapes + 1))
  kinds = tuple(int(k) for k in rng.integers(0, len(KINDS), n))
  radii = rng.uniform(3.0, 6.0, n) * scale
  if kind is not None:
    if kind not in KINDS:
      raise ValueError(f'kind must be one of {KINDS}, got {kind!r}.')
    kinds = (KINDS.index(kind),) * n
  if radius is not None:
    if not 0 < radius < size / 2:
      raise ValueError(f'radius must be in (0, {size / 2}) px for a {size}-px frame, got {radius}.')
    radii = np.full(n, float(radius))
  bg0 = rng.uniform(0, 90, 3)
  plain = rng.random() < 0.5
  bg1 = bg0 if plain or plain_background else np.clip(bg0 + rng.uniform(-40, 90, 3), 0, 255)
  angle = rng.uniform(0, 2 * np.pi)
  colors = []
  for _ in range(n):  # bright, saturated, at least 120 away from the background in L1 per channel mean
    while True:
      c = rng.uniform(0, 255, 3)
      c[rng.integers(3)] = rng.uniform(200, 255)
      if np.abs(c - (bg0 + bg1) / 2).mean() > 80:
        break
    colors.append(c)
  start = np.stack([rng.uniform(r, size - r, 2) for r in radii])
  speed = rng.uniform(min_speed, max_speed, n) * scale
  theta = rng.uniform(0, 2 * np.pi, n)
  velocity = np.stack([speed * np.cos(theta), speed * np.sin(theta)], axis=-1)
  if monochrome:
    colors, bg0, bg1 = [np.full(3, 255.0)] * n, np.zeros(3), np.zeros(3)
  return VideoSpec(size, num_frames, kinds, radii, np.asarray(colors), start, velocity, np.stack([bg0, bg1]),
                   np.array([np.cos(angle), np.sin(angle)]))


def trajectories(spec: VideoSpec) -> tuple[np.ndarray, np.ndarray]:
  """Centres (T, n, 2) and velocities (T, n, 2): constant speed, elastic bounces keeping each shape inside
  [r, size - r] on both axes (reflection about the wall, so no time is lost at a bounce)."""
  lo = spec.radii[:, None]
  hi = spec.size - spec.radii[:, None]
  p, v = spec.start.astype(np.float64).copy(), spec.velocity.astype(np.float64).copy()
  centers, vels = [], []
  for _ in range(spec.num_frames):
    centers.append(p.copy())
    vels.append(v.copy())
    p = p + v
    for _ in range(4):  # a fast shape may hit both walls of a small frame within one step
      below, above = p < lo, p > hi
      p = np.where(below, 2 * lo - p, np.where(above, 2 * hi - p, p))
      v = np.where(below | above, -v, v)
  return np.stack(centers), np.stack(vels)


def _coverage(kind: int, center: np.ndarray, radius: float, size: int) -> np.ndarray:
  """(size, size) fraction of each pixel covered by the shape (SUPERSAMPLE^2 samples per pixel)."""
  s = SUPERSAMPLE
  coords = (np.arange(size * s) + 0.5) / s  # sample positions; pixel i covers [i, i + 1)
  dx = coords[None, :] - center[0]
  dy = coords[:, None] - center[1]
  if KINDS[kind] == 'disc':
    inside = dx**2 + dy**2 <= radius**2
  else:
    inside = (np.abs(dx) <= radius) & (np.abs(dy) <= radius)
  return inside.reshape(size, s, size, s).mean(axis=(1, 3))


def background(spec: VideoSpec) -> np.ndarray:
  """(size, size, 3) float background colours."""
  c = np.arange(spec.size) + 0.5
  proj = (c[None, :] * spec.gradient_dir[0] + c[:, None] * spec.gradient_dir[1])
  lo, hi = proj.min(), proj.max()
  a = ((proj - lo) / (hi - lo))[..., None]
  return (1 - a) * spec.background[0] + a * spec.background[1]


def render(spec: VideoSpec, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Frames uint8 (T, size, size, 3) and coverage masks float (T, n, size, size); later shapes are drawn on top."""
  bg = background(spec)
  frames, masks = [], []
  for cs in centers:
    img = bg.copy()
    ms = []
    for i, kind in enumerate(spec.kinds):
      m = _coverage(kind, cs[i], spec.radii[i], spec.size)
      img = img * (1 - m[..., None]) + spec.colors[i] * m[..., None]
      ms.append(m)
    frames.append(np.clip(np.round(img), 0, 255).astype(np.uint8))
    masks.append(np.stack(ms))
  return np.stack(frames), np.stack(masks)


def example_rng(seed: int, split: str, index: int) -> np.random.Generator:
  return np.random.default_rng(np.random.SeedSequence([int(seed), SPLIT_IDS[split], int(index)]))


def speed_class(config: MovingShapesConfig, index: int) -> int:
  """The label of example `index`: its speed class (`MovingShapesConfig.speed_classes`), or 0 without classes."""
  return index % len(config.speed_classes) if config.speed_classes else 0


def make_video(config: MovingShapesConfig, split: str, index: int):
  """(spec, frames uint8 (T, S, S, 3), centres (T, n, 2), velocities (T, n, 2)) of one example."""
  if config.speed_classes:  # px/frame of this size: undo video_spec's scaling by size / 32
    lo, hi = (v * 32.0 / config.size for v in config.speed_classes[speed_class(config, index)])
  else:
    lo, hi = config.min_speed, config.max_speed
  spec = video_spec(example_rng(config.seed, split, index), config.size, config.num_frames, lo, hi,
                    config.max_shapes, config.plain_background, config.monochrome, config.kind, config.radius)
  centers, vels = trajectories(spec)
  frames, _ = render(spec, centers)
  return spec, frames, centers, vels


def _pad(x: np.ndarray, axis: int, fill) -> np.ndarray:
  pad = [(0, 0)] * x.ndim
  pad[axis] = (0, MAX_SHAPES - x.shape[axis])
  return np.pad(x, pad, constant_values=fill)


class MovingShapes(base.VideoBuilder):
  """Shapes crossing the frame at 1-4 px/frame (at 32x32) with elastic bounces; 'train' and 'test' splits."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  BUILDER_CONFIGS = [
      MovingShapesConfig(name='s32', description='32x32, 64 frames, 256 train / 64 test videos.'),
      MovingShapesConfig(name='s64', description='64x64, 64 frames, 256 train / 64 test videos.', size=64),
      MovingShapesConfig(name='motion2', description='16x16, 32 frames, one white disc or square on black; label 0 '
                         '= small motion (0.5-1 px/frame), 1 = large motion (3-4 px/frame); 512 train / 128 test.',
                         size=16, num_frames=32, num_train=512, num_test=128, max_shapes=1, plain_background=True,
                         monochrome=True, speed_classes=((0.5, 1.0), (3.0, 4.0))),
      MovingShapesConfig(name='motion3', description='motion2 with one fixed shape: a white disc of radius 2.5 px '
                         'on black (only position and motion vary).', size=16, num_frames=32, num_train=512,
                         num_test=128, max_shapes=1, plain_background=True, monochrome=True,
                         speed_classes=((0.5, 1.0), (3.0, 4.0)), kind='disc', radius=2.5),
      MovingShapesConfig(name='tiny2', description='motion2 at 12 frames, 8 train / 8 test videos (tests).',
                         size=16, num_frames=12, num_train=8, num_test=8, max_shapes=1, plain_background=True,
                         monochrome=True, speed_classes=((0.5, 1.0), (3.0, 4.0))),
      MovingShapesConfig(name='tiny', description='32x32, 24 frames, 16 train / 8 test videos (tests).',
                         num_frames=24, num_train=16, num_test=8),
  ]
  NEEDS_MANUAL_DIR = False  # generated: framedit_jax.data.pipeline builds it on first use
  MANUAL_DOWNLOAD_INSTRUCTIONS = 'Nothing to download: the videos are generated.'
  FPS = 8.0

  def _info(self):
    t = MAX_SHAPES
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            'video': tfds.features.Video(shape=(None, None, None, 3), encoding_format='jpeg'),
            'label': np.int32,
            'fps': np.float32,
            'num_frames': np.int32,
            'path': tfds.features.Text(),
            'num_shapes': np.int32,
            'centers': tfds.features.Tensor(shape=(None, t, 2), dtype=np.float32),  # (x, y) px, NaN = no shape
            'velocities': tfds.features.Tensor(shape=(None, t, 2), dtype=np.float32),
            'radii': tfds.features.Tensor(shape=(t,), dtype=np.float32),
            'kinds': tfds.features.Tensor(shape=(t,), dtype=np.int32),  # index into KINDS, -1 = no shape
            'colors': tfds.features.Tensor(shape=(t, 3), dtype=np.float32),
        }),
        metadata=tfds.core.MetadataDict(),
        disable_shuffling=True,
    )

  def _split_generators(self, dl_manager):
    del dl_manager
    cfg = self.builder_config
    self.info.metadata['kinds'] = list(KINDS)
    self.info.metadata['label_names'] = ([f'speed {lo:g}-{hi:g} px/frame' for lo, hi in cfg.speed_classes]
                                         if cfg.speed_classes else [])
    self.info.metadata['generator'] = {k: getattr(cfg, k) for k in ('size', 'num_frames', 'num_train', 'num_test',
                                                                     'min_speed', 'max_speed', 'seed', 'max_shapes',
                                                                     'plain_background', 'speed_classes',
                                                                     'monochrome', 'kind', 'radius')}
    return {'train': self._generate_examples('train', cfg.num_train),
            'test': self._generate_examples('test', cfg.num_test)}

  def _generate_examples(self, split, num):  # pylint: disable=arguments-renamed
    cfg = self.builder_config
    for i in range(num):
      spec, frames, centers, vels = make_video(cfg, split, i)
      yield i, {
          'video': [io.BytesIO(decode.encode_jpeg(f, cfg.jpeg_quality)) for f in frames],
          'label': speed_class(cfg, i),
          'fps': np.float32(self.FPS),
          'num_frames': np.int32(len(frames)),
          'path': f'{split}/{i:05d}',
          'num_shapes': np.int32(len(spec.kinds)),
          'centers': _pad(centers.astype(np.float32), 1, np.nan),
          'velocities': _pad(vels.astype(np.float32), 1, np.nan),
          'radii': _pad(spec.radii.astype(np.float32), 0, 0.0),
          'kinds': _pad(np.asarray(spec.kinds, np.int32), 0, -1),
          'colors': _pad(spec.colors.astype(np.float32), 0, 0.0),
      }

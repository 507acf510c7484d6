"""Latent cache: VAE posterior parameters of whole videos on disk, and a batch iterator over them.

What is cached (as the official `preprocess_latent.py`): every frame of every video of a split
(frame_interval 1, the whole video), after the dataset's deterministic spatial transform to
`data.image_size`, encoded independently; the posterior parameters [mean | logvar] (unscaled, logvar
clamped to [-30, 20]) are stored, not a sample. Datasets trained with a random horizontal flip also get the
moments of the mirrored video (official `--flip`). Clips are cut at training time, so one cache serves any
`num_frames` / `frame_interval`, and a fresh posterior sample is drawn for every clip.

On-disk format (`<data.latents_dir>/<split>/`):
  index.json         {'format': 'framedit_latent_cache', 'version': 1, 'latent_shape': [h, w, C],
                      'dtype', 'scale_factor', 'image_size', 'dataset', 'split', 'spatial_mode',
                      'vae': {...}, 'videos': [{'label', 'num_frames', 'shard', 'offset',
                      'flip_shard', 'flip_offset'[, 'caption']}, ...]}   (videos in the TFDS split's example
                      order; 'caption' for captioned datasets such as text_video_folder)
  shard-00000.npy    (F, h, w, 2C) float32|float16: the frames of consecutive videos, [mean | logvar]
Shards are memory-mapped, so a clip reads only its own frames.

DP-VAE clip caches (`config.vae.name='dpvae'`, t_g > 1): the DP-VAE encodes a clip of T frames into T/t_g
latent frames, and a GoP's latent depends on the clip's other GoPs (temporal convolutions and clip-wide
GroupNorms in the residual encoder), so neither frames nor GoPs can be cached on their own. The cache holds
whole training clips instead: for every window start s the clip recipe can draw (0 .. max(0, n - num_frames *
frame_interval - 1), every `start_stride`-th one), the moments of the clip `clip_recipe.clip_indices(s, n,
num_frames, frame_interval, temporal_mode)` encoded in one call, as the pixel pipeline does on the fly. Short
videos (n < window) keep their one start-0 clip, clamped as in the pixel pipeline (no video is skipped, so
video indices and the epoch order stay those of the pixel pipeline). Index additions:
  'clips': {'num_frames', 'frame_interval', 't_g', 'temporal_mode', 'start_stride', 'latent_frames' (= T/t_g)}
  'vae': {..., 't_g'};  videos[i]: 'num_frames' = source frames n, 'num_starts'; its rows are the clips in
  start order, latent_frames rows each (clip j = rows offset + j * latent_frames ...).
The reader takes the clip of the plan's start (start // start_stride); it raises a one-line ValueError when
the config's num_frames / frame_interval / temporal_mode / DP-VAE t_g (or use_image_num > 0) differ from the
cache's. A cache serves only the clip rules it was built with.

Batches follow the pixel pipeline (`framedit_jax.data.pipeline`) exactly: global batch `step` covers stream
positions [step * G, (step + 1) * G), the epoch order is `clip_recipe.epoch_permutation(seed, epoch)`, and position q
draws its window start, flip and joint-training images from `clip_recipe.example_rng(seed, 0, q)` in the same order. The
same config therefore selects the same clips of the same videos as in pixel space; the posterior noise
comes from the separate stream `clip_recipe.example_rng(seed, 2, q)`.
"""

import json
import os

from absl import logging
import numpy as np

from framedit_jax.data import clip_recipe
from framedit_jax.vae import distribution

FORMAT, VERSION = 'framedit_latent_cache', 1
INDEX_FILE = 'index.json'


def split_dir(latents_dir, split):
  return os.path.join(latents_dir, split.replace('/', '_'))


class LatentCacheWriter:
  """Appends per-video moments to `.npy` shards and writes `index.json` on `close()`.

  Args:
    directory: output folder (the `<latents_dir>/<split>` of a cache); created if missing.
    metadata: JSON-able dict merged into index.json (scale_factor, image_size, dataset, vae, ...).
    dtype: 'float32' (default, exact) or 'float16' (half the disk).
    shard_frames: a shard is closed once it holds at least this many frames (videos never straddle shards).
  """

  def __init__(self, directory, metadata, dtype='float32', shard_frames=2048):
    if dtype not in ('float32', 'float16'):
      raise ValueError(f'latent cache dtype must be float32 or float16, got {dtype!r}.')
    os.makedirs(directory, exist_ok=True)
    self.directory, self.dtype, self.shard_frames = directory, dtype, int(shard_frames)
    self.meta = dict(metadata)
    self.videos, self.shards = [], []
    self._buf, self._buf_frames, self.latent_shape = [], 0, None

  def _append(self, moments):
    """Buffers `(T, h, w, 2C)` moments; returns (shard index, frame offset)."""
    if self.latent_shape is None:
      self.latent_shape = list(moments.shape[1:-1]) + [moments.shape[-1] // 2]
    elif list(moments.shape[1:-1]) + [moments.shape[-1] // 2] != self.latent_shape:
      raise ValueError(f'latent shape {moments.shape[1:]} differs from the cache {self.latent_shape}.')
    loc = (len(self.shards), self._buf_frames)
    self._buf.append(np.asarray(moments, self.dtype))
    self._buf_frames += len(moments)
    return loc

  def _flush(self):
    if self._buf:
      name = f'shard-{len(self.shards):05d}.npy'
      np.save(os.path.join(self.directory, name), np.concatenate(self._buf))
      self.shards.append(name)
      self._buf, self._buf_frames = [], 0

  def add(self, mean, logvar, label=0, flip_mean=None, flip_logvar=None, num_frames=None, **extra):
    """Stores one video: mean/logvar `(T, h, w, C)` float (unscaled), optional mirrored-video moments.
    `num_frames`: the video's source frames when they differ from the stored rows (clip caches)."""
    entry = dict(extra, label=int(label), num_frames=int(len(mean) if num_frames is None else num_frames))
    entry['shard'], entry['offset'] = self._append(np.concatenate([mean, logvar], -1))
    if flip_mean is not None:
      entry['flip_shard'], entry['flip_offset'] = self._append(np.concatenate([flip_mean, flip_logvar], -1))
    self.videos.append(entry)
    if self._buf_frames >= self.shard_frames:
      self._flush()

  def close(self):
    """Writes the remaining shard and index.json (written last: a cache without it is incomplete)."""
    self._flush()
    index = dict(self.meta, format=FORMAT, version=VERSION, dtype=self.dtype, latent_shape=self.latent_shape,
                 shards=self.shards, videos=self.videos)
    tmp = os.path.join(self.directory, INDEX_FILE + '.tmp')
    with open(tmp, 'w') as f:
      json.dump(index, f)
    os.replace(tmp, os.path.join(self.directory, INDEX_FILE))
    return index


def read_index(directory):
  """Loads and checks index.json. Raises FileNotFoundError (one line, with the command to build it)."""
  path = os.path.join(directory, INDEX_FILE)
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{path} not found: build the latent cache with python launch/prepare_latents.py '
                            '--config=<config> --split=<split> (writes <data.latents_dir>/<split>/).')
  with open(path) as f:
    index = json.load(f)
  if index.get('format') != FORMAT or index.get('version') != VERSION:
    raise ValueError(f'{path}: not a {FORMAT} v{VERSION} index (format={index.get("format")!r}).')
  return index


def cached_captions(index):
  """The caption of every cached video, in video order, or None when any video has none (an uncaptioned
  dataset, or a cache built before captions were stored)."""
  videos = index['videos']
  return [str(v['caption']) for v in videos] if videos and all('caption' in v for v in videos) else None


class LatentBatchIterator:
  """Host-local batches of scaled latent clips, a pure function of (seed, step, process_index).

  Batch: {'video': float32 (B, T, h, w, C) = z * scale_factor, z ~ N(mean, exp(logvar)) (or the mean with
  `data.latent_sample=False`), 'label': int32 (B,)}, T = num_frames + use_image_num (num_frames / t_g for a
  DP-VAE clip cache), B = G // process_count; plus 'caption': str objects (B,) when every cached video has
  one (a captioned dataset), as the pixel pipeline's batches.
  State: {'step', 'seed', 'dataset', 'split', 'num_examples', 'process_index'} (same keys as the pixel
  iterator), JSON-able.
  """

  def __init__(self, config, split, *, process_index=0, process_count=1):
    d = config.data
    if d.global_batch_size % process_count:
      raise ValueError(f'data.global_batch_size={d.global_batch_size} is not divisible by process_count='
                       f'{process_count}')
    if not d.get('latents_dir', None):
      raise ValueError('data.use_latents is set but data.latents_dir is empty: point it at the folder given to '
                       'launch/prepare_latents.py --config.data.latents_dir=...')
    self.directory = split_dir(d.latents_dir, split)
    self.index = read_index(self.directory)
    self.videos = self.index['videos']
    self.name, self.split = self.index.get('dataset', d.dataset), split
    if self.index.get('image_size') not in (None, int(d.image_size)):
      raise ValueError(f'{self.directory} was built at image_size={self.index["image_size"]}, config has '
                       f'data.image_size={d.image_size}: rebuild the cache or fix the config.')
    if not self.videos:
      raise ValueError(f'{self.directory} holds no videos.')
    self.seed = int(config.seed)
    self.global_batch = int(d.global_batch_size)
    self.local_batch = self.global_batch // process_count
    self.process_index = process_index
    self.process_count = process_count
    recipe_config = config.copy_and_resolve_references()
    with recipe_config.unlocked():
      recipe_config.data.dataset = self.name
    self.recipe = clip_recipe.ClipRecipe.from_config(recipe_config)
    self.clips = self.index.get('clips')  # None: per-frame cache; dict: DP-VAE clip cache
    self._check_vae_kind(config)
    self.sample = bool(d.get('latent_sample', True))
    self.scale_factor = float(config.vae.get('scale_factor', self.index.get('scale_factor', 0.18215)))
    if 'scale_factor' in self.index and abs(self.index['scale_factor'] - self.scale_factor) > 1e-9:
      logging.warning('latent cache was built with scale_factor %s, config.vae.scale_factor is %s (used).',
                      self.index['scale_factor'], self.scale_factor)
    self._shards = [np.load(os.path.join(self.directory, s), mmap_mode='r') for s in self.index['shards']]
    self._order = clip_recipe.EpochOrder(self.seed, len(self.videos))
    self._step = 0
    self.captions = cached_captions(self.index)

  def __len__(self):
    return len(self.videos)

  def _check_vae_kind(self, config):
    """One-line ValueErrors when the cache kind (per-frame / DP-VAE clips) or its clip rules differ from the
    training config: clip caches store clips of one (num_frames, frame_interval, t_g, temporal_mode)."""
    name = config.vae.get('name', None)
    built = self.index.get('vae', {}).get('name')
    if self.clips is None:
      if name == 'dpvae':
        raise ValueError(f'{self.directory} is a per-frame latent cache (vae.name={built!r}), config has '
                         'vae.name=dpvae: rebuild it with launch/prepare_latents.py --config.vae.name=dpvae.')
      return
    if name != 'dpvae':
      raise ValueError(f'{self.directory} is a DP-VAE clip cache, config has vae.name={name!r}: set '
                       '--config.vae.name=dpvae (and its vae.checkpoint) or point data.latents_dir elsewhere.')
    if self.recipe.use_image_num:
      raise ValueError(f'{self.directory} is a DP-VAE clip cache: set data.use_image_num=0.')
    mine = {'num_frames': self.recipe.num_frames, 'frame_interval': self.recipe.frame_interval,
            'temporal_mode': self.recipe.temporal}
    t_g = _config_t_g(config.vae.get('checkpoint', None))
    if t_g is not None:
      mine['t_g'] = t_g
    for key, value in mine.items():
      if self.clips[key] != value:
        field = 'vae.checkpoint t_g' if key == 't_g' else f'data.{key}'
        fix = ('use the DP-VAE it was built with' if key == 't_g' else
               f'train with --config.data.{key}={self.clips[key]}')
        raise ValueError(f'{self.directory} was built with {key}={self.clips[key]}, config has {field}={value}: '
                         f'{fix} or rebuild the cache (launch/prepare_latents.py) with this config.')

  def _frames(self, entry, idx, flip):
    shard, offset = (entry['flip_shard'], entry['flip_offset']) if flip else (entry['shard'], entry['offset'])
    return np.asarray(self._shards[shard][offset + np.asarray(idx, np.int64)], np.float32)

  def _plan(self, position):
    return self.recipe.plan(self.seed, position, self._order(position), len(self.videos),
                            lambda i: self.videos[i]['num_frames'])

  def example(self, position):
    """(moments (T, h, w, 2C) float32, label int, image labels int32 (use_image_num,)) of stream position
    `position`: the pixel pipeline's clip (`clip_recipe.ClipRecipe.plan`)."""
    return self._example(self._plan(position))

  def _example(self, plan):
    entry = self.videos[plan.video]
    if self.clips is not None:  # the encoded clip at the plan's window start (frames[0])
      latent_t, stride = int(self.clips['latent_frames']), int(self.clips['start_stride'])
      j = min(int(plan.frames[0]) // stride, int(entry['num_starts']) - 1)
      moments = self._frames(entry, j * latent_t + np.arange(latent_t), plan.flip and 'flip_shard' in entry)
      return moments, (entry['label'] if self.recipe.labelled else 0), np.zeros((0,), np.int32)
    parts = [self._frames(entry, plan.frames, plan.flip and 'flip_shard' in entry)]
    image_labels = []
    for other, f, img_flip in plan.images:
      o = self.videos[other]
      parts.append(self._frames(o, [f], img_flip and 'flip_shard' in o))
      image_labels.append(o['label'] if self.recipe.labelled else 0)
    return (np.concatenate(parts), (entry['label'] if self.recipe.labelled else 0),
            np.asarray(image_labels, np.int32))

  def positions(self, step):
    return clip_recipe.positions(step, self.global_batch, self.process_index, self.process_count)

  def batch(self, step):
    """The host-local batch of `step` (does not move the iterator)."""
    items, captions = [], []
    for q in self.positions(step):
      plan = self._plan(q)
      if self.captions is not None:
        captions.append(self.captions[plan.video])
      moments, label, image_labels = self._example(plan)
      mean, logvar = np.split(moments, 2, axis=-1)
      z = distribution.sample_np(mean, logvar, clip_recipe.example_rng(self.seed, 2, q)) if self.sample else mean
      items.append(((z * np.float32(self.scale_factor)).astype(np.float32), label, image_labels))
    batch = {'video': np.stack([v for v, _, _ in items]), 'label': np.asarray([l for _, l, _ in items], np.int32)}
    if self.recipe.use_image_num:
      batch['label_image'] = np.stack([li for _, _, li in items]).astype(np.int32)
    if self.captions is not None:
      batch['caption'] = np.asarray(captions, dtype=object)
    return batch

  def __iter__(self):
    return self

  def __next__(self):
    out = self.batch(self._step)
    self._step += 1
    return out

  def get_state(self):
    return {'step': self._step, 'seed': self.seed, 'dataset': self.name, 'split': self.split,
            'num_examples': len(self.videos), 'process_index': self.process_index}

  def set_state(self, state):
    for key, mine in (('seed', self.seed), ('dataset', self.name), ('split', self.split),
                      ('num_examples', len(self.videos))):
      if key in state and state[key] != mine:
        logging.warning('Data state was saved with %s=%r, now %r: the batch stream differs.', key, state[key], mine)
    self._step = int(state['step'])

  def close(self):
    self._shards = []


def _config_t_g(checkpoint):
  """t_g of the DP-VAE export directory `checkpoint` (its dpvae_config.json), None if unreadable."""
  path = os.path.join(checkpoint, 'dpvae_config.json') if checkpoint else None
  if not path or not os.path.isfile(path):
    return None
  with open(path) as f:
    return int(json.load(f)['dpvae'].get('t_g', 4))


def make_latent_dataset(config, split, *, process_index=0, process_count=1):
  """Iterator of latent batches from the cache in `config.data.latents_dir` (see LatentBatchIterator).

  Args:
    config: ConfigDict with `seed`, `data.{latents_dir, global_batch_size, num_frames, frame_interval,
      image_size, use_image_num}` (optional `data.{temporal_mode, random_flip, latent_sample}`) and
      `vae.scale_factor`. (`framedit_jax.train.experiment.make_dataset` picks this iterator when
    `data.use_latents` is set.)
    split: the split name the cache was built for ('train', ...).
    process_index, process_count: this host and the number of hosts.
  Raises:
    FileNotFoundError: no cache for this split (one line with the command that builds it).
  """
  return LatentBatchIterator(config, split, process_index=process_index, process_count=process_count)

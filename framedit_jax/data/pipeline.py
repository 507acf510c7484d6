"""Input pipeline: `make_dataset(config, split)` -> iterator of host-local video batches.

Design (exact resume): every batch is a pure function of (seed, step, process_index).
  * Examples are read by random access from a TFDS `array_record` data source (one record per video, frames
    stored as JPEG); only the frames of the chosen clip are JPEG-decoded.
  * The global example stream is an endless sequence of epochs; epoch e visits the N examples in the order
    `epoch_permutation(seed, e)`. Global batch `step` covers stream positions
    [step * G, (step + 1) * G), G = global_batch_size; process p takes the slice
    [step * G + p * B, step * G + (p + 1) * B), B = G // process_count, so hosts never share an example
    within a step (and not at all within an epoch).
  * Randomness of stream position q (clip start, flip, joint-training images) comes from
    `example_rng(seed, 0, q)`, so the same position always gives the same clip.
  * The iterator state is {'step': n, ...}: restoring it continues the identical stream, without repeating
    or skipping data. Worker threads (`data.num_parallel_calls`) build `data.prefetch` batches ahead.

Batch: {'video': float32 (B, T, H, W, 3) in [-1, 1], 'label': int32 (B,)}, T = num_frames + use_image_num.
When `config.data.use_latents` is set, `framedit_jax.vae.latent_cache.make_latent_dataset` is returned.
"""

import collections
import concurrent.futures
import os
import threading

from absl import logging
import numpy as np
import tensorflow_datasets as tfds

from framedit_jax.data import builders
from framedit_jax.data import decode
from framedit_jax.data import sampling
from framedit_jax.data import transforms

# dataset -> (default builder config, temporal mode, spatial mode, random flip, labelled)
DATASET_RULES = {
    'sample_videos': ('s64', 'stride', 'crop_resize', True, False),
    'taichi_hd': ('full', 'stride', 'crop_resize', True, False),
    'sky_timelapse': ('full', 'stride', 'crop_resize', False, False),
    'faceforensics': ('full', 'linspace', 'squash', True, False),
    'ucf101': ('full', 'linspace', 'squash', True, True),
    'ucf101_videos': ('full', 'linspace', 'squash', True, True),
    'video_folder': ('full', 'stride', 'crop_resize', True, False),
}
_NO_DECODE = tfds.decode.DeserializeMethod.DESERIALIZE_NO_DECODE


def _split_name(dataset):
  name, _, cfg = dataset.partition('/')
  if name not in builders.BUILDERS:
    raise ValueError(f'data.dataset={dataset!r}: use one of {sorted(builders.BUILDERS)} (optionally /<config>)')
  return name, cfg or None


def get_builder(config, *, build=True):
  """The prepared TFDS builder for `config.data.dataset` (builds it from manual_dir when missing).

  `data.dataset` may name a builder config ('sample_videos/s128'); default: DATASET_RULES. sample_videos
  builds on first use without any download.
  Raises:
    FileNotFoundError: the dataset is not built and `data.manual_dir` is missing (one line: what to get).
  """
  name, cfg = _split_name(config.data.dataset)
  cfg = cfg or config.data.get('builder_config', None) or DATASET_RULES[name][0]
  cls = builders.BUILDERS[name]
  builder = cls(config=cfg, data_dir=config.data.data_dir, file_format='array_record')
  if builder.is_prepared() or not build:
    return builder
  manual_dir = config.data.manual_dir
  if name != 'sample_videos':
    if not manual_dir or not os.path.isdir(manual_dir):
      raise FileNotFoundError(
          f'{name}: data.manual_dir={manual_dir!r} is not a directory and {builder.data_dir} is not built. '
          f'{cls.MANUAL_DOWNLOAD_INSTRUCTIONS} Then run: python launch/prepare_data.py --dataset={name} '
          f'--manual_dir=DIR (or pass --config.data.manual_dir=DIR).')
  logging.info('Building %s into %s', name, builder.data_dir)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  return builder


def _example_fields(ex):
  f = ex.features.feature
  return f['video'].bytes_list.value, int(f['label'].int64_list.value[0])


class ClipSource:
  """Random access to decoded clips of one split (thread-safe: one data source per thread).

  Args:
    builder: a prepared builder from `get_builder`.
    split: TFDS split ('train', 'test', 'train[:90%]') or, for UCF101, an official fold 'train1'..'test3'.
  """

  def __init__(self, builder, split, cache_bytes=0):
    self.builder = builder
    self._cache = collections.OrderedDict()  # example index -> (frames, label), LRU bounded by bytes
    self._cache_bytes = 0
    self._cache_limit = int(cache_bytes)
    self._cache_lock = threading.Lock()
    meta = builder.info.metadata or {}
    folds = meta.get('folds', {}) or {}
    self.indices = None
    if split in folds:
      self.tfds_split = 'train'
      self.indices = np.asarray(folds[split], np.int64)
    elif split.split('[')[0] in builder.info.splits:
      self.tfds_split = split
    elif builder.name == 'sample_videos':
      self.tfds_split = 'train'  # one split only: the demo evaluates on the training videos
    else:
      have = sorted(list(builder.info.splits) + list(folds))
      raise ValueError(f'data.split={split!r} is not in {builder.name}: use one of {have}')
    self._local = threading.local()
    n = len(self._source())
    if self.indices is None:
      self.indices = np.arange(n, dtype=np.int64)
    if len(self.indices) == 0:
      raise ValueError(f'{builder.name}/{split} has no examples (see skipped counts in {builder.data_dir})')
    self.label_names = list(meta.get('label_names', []) or [])

  def __len__(self):
    return len(self.indices)

  def _source(self):
    src = getattr(self._local, 'src', None)
    if src is None:
      src = self.builder.as_data_source(self.tfds_split, deserialize_method=_NO_DECODE)
      self._local.src = src
    return src

  def record(self, i):
    """(jpeg bytes per frame, label) of example i (0 <= i < len(self)); recently read records are cached."""
    if self._cache_limit:
      with self._cache_lock:
        hit = self._cache.get(i)
        if hit is not None:
          self._cache.move_to_end(i)
          return hit
    frames, label = _example_fields(self._source()[int(self.indices[i])])
    frames = list(frames)
    if self._cache_limit:
      size = sum(len(f) for f in frames)
      with self._cache_lock:
        if i not in self._cache and size <= self._cache_limit:
          self._cache[i] = (frames, label)
          self._cache_bytes += size
          while self._cache_bytes > self._cache_limit:
            _, (old, _) = self._cache.popitem(last=False)
            self._cache_bytes -= sum(len(f) for f in old)
    return frames, label


class _Recipe:
  """Per-dataset sampling rules read from the config (overridable: data.temporal_mode, data.spatial_mode...)."""

  def __init__(self, config, name):
    _, temporal, spatial, flip, labelled = DATASET_RULES[name]
    d = config.data
    self.num_frames = int(d.num_frames)
    self.frame_interval = int(d.frame_interval)
    self.image_size = int(d.image_size)
    self.use_image_num = int(d.use_image_num or 0)
    self.temporal = d.get('temporal_mode', None) or temporal
    self.spatial = d.get('spatial_mode', None) or spatial
    rf = d.get('random_flip', None)
    self.flip = bool(flip if rf is None else rf)  # None = the dataset's own rule
    self.labelled = labelled or bool(d.get('label_subfolders', False))
    if self.temporal not in sampling.TEMPORAL_MODES:
      raise ValueError(f'data.temporal_mode={self.temporal!r}: use one of {sampling.TEMPORAL_MODES}')
    if self.spatial not in transforms.SPATIAL_MODES:
      raise ValueError(f'data.spatial_mode={self.spatial!r}: use one of {transforms.SPATIAL_MODES}')


def _decode_frames(frames, idx):
  return np.stack([decode.decode_jpeg(frames[int(i)]) for i in idx])


def make_example(source, recipe, seed, position, index):
  """One example of the stream.

  Args:
    source: ClipSource.
    recipe: _Recipe.
    seed: config.seed.
    position: stream position (drives all randomness).
    index: example index into `source` for this position.
  Returns:
    (video float32 (T, S, S, 3) in [-1, 1], label int).
  """
  rng = sampling.example_rng(seed, 0, position)
  frames, label = source.record(index)
  n = len(frames)
  start = sampling.window_start(rng, n, recipe.num_frames * recipe.frame_interval)
  idx = sampling.clip_indices(start, n, recipe.num_frames, recipe.frame_interval, recipe.temporal)
  flip = recipe.flip and rng.random() < 0.5
  video = transforms.spatial_transform(_decode_frames(frames, idx), recipe.image_size, recipe.spatial, flip)
  if recipe.use_image_num:
    images = []
    for _ in range(recipe.use_image_num):
      other = int(rng.integers(len(source)))
      other_frames, _ = source.record(other)
      f = int(rng.integers(len(other_frames)))
      img_flip = recipe.flip and rng.random() < 0.5
      images.append(transforms.spatial_transform(
          _decode_frames(other_frames, [f]), recipe.image_size, recipe.spatial, img_flip))
    video = np.concatenate([video] + images, axis=0)
  return video, (label if recipe.labelled else 0)


class VideoBatchIterator:
  """Iterator of host-local batches whose content is a pure function of (seed, step, process_index).

  See the module docstring. `get_state()` / `set_state()` save and restore the position.
  """

  def __init__(self, config, split, *, process_index=0, process_count=1):
    d = config.data
    if d.global_batch_size % process_count:
      raise ValueError(f'data.global_batch_size={d.global_batch_size} is not divisible by process_count='
                       f'{process_count}')
    self.name, _ = _split_name(d.dataset)
    self.split = split
    self.seed = int(config.seed)
    self.global_batch = int(d.global_batch_size)
    self.local_batch = self.global_batch // process_count
    self.process_index = process_index
    cache_mb = d.get('record_cache_mb', 256)
    self.source = ClipSource(get_builder(config), split, cache_bytes=int(cache_mb) * 2**20)
    self.recipe = _Recipe(config, self.name)
    workers = int(d.num_parallel_calls)
    self.workers = workers if workers > 0 else (os.cpu_count() or 1)
    self.prefetch = max(1, int(d.prefetch))
    self._perm_cache = {}
    self._perm_lock = threading.Lock()
    self._pool = concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix='framedit_data')
    self._pending = {}
    self._step = 0

  def __len__(self):
    """Examples in the split (one epoch)."""
    return len(self.source)

  def _index(self, position):
    n = len(self.source)
    epoch, i = divmod(position, n)
    with self._perm_lock:
      perm = self._perm_cache.get(epoch)
      if perm is None:
        perm = sampling.epoch_permutation(self.seed, epoch, n)
        self._perm_cache = {e: p for e, p in self._perm_cache.items() if e >= epoch - 1}
        self._perm_cache[epoch] = perm
    return int(perm[i])

  def positions(self, step):
    """Stream positions of this host's examples in batch `step`: (local_batch,) ints."""
    first = step * self.global_batch + self.process_index * self.local_batch
    return list(range(first, first + self.local_batch))

  def _load(self, position):
    return make_example(self.source, self.recipe, self.seed, position, self._index(position))

  def _submit(self, step):
    if step not in self._pending:
      self._pending[step] = [self._pool.submit(self._load, q) for q in self.positions(step)]

  def batch(self, step):
    """The host-local batch of `step` (computed synchronously; does not move the iterator)."""
    items = [self._load(q) for q in self.positions(step)]
    return self._stack(items)

  @staticmethod
  def _stack(items):
    return {'video': np.stack([v for v, _ in items]), 'label': np.asarray([l for _, l in items], np.int32)}

  def __iter__(self):
    return self

  def __next__(self):
    for s in range(self._step, self._step + self.prefetch + 1):
      self._submit(s)
    futures = self._pending.pop(self._step)
    batch = self._stack([f.result() for f in futures])
    self._step += 1
    return batch

  def get_state(self):
    """JSON-serialisable position: {'step', 'seed', 'dataset', 'split', 'num_examples', 'process_index'}."""
    return {'step': self._step, 'seed': self.seed, 'dataset': self.name, 'split': self.split,
            'num_examples': len(self.source), 'process_index': self.process_index}

  def set_state(self, state):
    """Continue from a `get_state()` dict; warns when it was saved for another seed/dataset/split/size."""
    for key, mine in (('seed', self.seed), ('dataset', self.name), ('split', self.split),
                      ('num_examples', len(self.source))):
      if key in state and state[key] != mine:
        logging.warning('Data state was saved with %s=%r, now %r: the batch stream differs.', key, state[key], mine)
    for futures in self._pending.values():
      for f in futures:
        f.cancel()
    self._pending = {}
    self._step = int(state['step'])

  def close(self):
    self._pool.shutdown(wait=False, cancel_futures=True)


def make_dataset(config, split, *, process_index=0, process_count=1):
  """Host-local batch iterator for `config.data` (see the module docstring).

  Args:
    config: ConfigDict with `seed` and `data.{dataset, data_dir, manual_dir, num_frames, frame_interval,
      image_size, use_image_num, global_batch_size, num_parallel_calls, prefetch, use_latents}`; optional
      `data.{builder_config, temporal_mode, spatial_mode, random_flip, label_subfolders, record_cache_mb}`
      (record_cache_mb, default 256: LRU cache of raw records per iterator; 0 disables).
    split: 'train', 'test', a TFDS slice, or for UCF101 'train1'..'test3'.
    process_index, process_count: this host and the number of hosts.
  Returns:
    VideoBatchIterator (or the latent-cache iterator when data.use_latents) yielding
    {'video': float32 (B, T, H, W, 3) in [-1, 1], 'label': int32 (B,)}, B = global_batch_size // process_count.
  """
  if config.data.get('use_latents', False):
    from framedit_jax.vae import latent_cache  # pylint: disable=g-import-not-at-top
    return latent_cache.make_latent_dataset(config, split, process_index=process_index,
                                            process_count=process_count)
  return VideoBatchIterator(config, split, process_index=process_index, process_count=process_count)

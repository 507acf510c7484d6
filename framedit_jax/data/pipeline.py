"""Input pipeline: `make_dataset(config, split)` -> iterator of host-local video batches.

Design (exact resume): every batch is a pure function of (seed, step, process_index).
  * Examples are read by random access from a TFDS `array_record` data source (one record per video, frames
    stored as JPEG); only the frames of the chosen clip are JPEG-decoded.
  * The global example stream is an endless sequence of epochs; epoch e visits the N examples in the order
    `clip_recipe.epoch_permutation(seed, e)`. Global batch `step` covers stream positions
    [step * G, (step + 1) * G), G = global_batch_size; process p takes the slice
    [step * G + p * B, step * G + (p + 1) * B), B = G // process_count, so hosts never share an example
    within a step (and not at all within an epoch).
  * Randomness of stream position q (clip start, flip, joint-training images) comes from
    `clip_recipe.example_rng(seed, 0, q)`, so the same position always gives the same clip.
  * Loading runs on Grain: `grain.MapDataset.range(step * B, ...)` -> `.map(load)` (flat index k is slot
    k % B of this host's batch k // B) -> `.to_iter_dataset(ReadOptions(num_threads=data.num_parallel_calls,
    prefetch_buffer_size=(data.prefetch + 1) * B))` -> `.batch(B)`: examples are loaded on Grain's threads and
    batched in order, so prefetching cannot change the content; the sampler is sharded by process through
    `positions`.
  * The iterator state is {'step': n, ...} (checkpointed by orbax as JSON with the train state): restoring it
    rebuilds the Grain pipeline at step n and continues the identical stream, without
    repeating or skipping data.

Batch: {'video': float32 (B, T, H, W, 3) in [-1, 1], 'label': int32 (B,)}, T = num_frames + use_image_num,
plus 'label_image': int32 (B, use_image_num) when use_image_num > 0, and 'caption': (B,) str objects for
captioned datasets (`text_video_folder`: the T2V task looks their T5 embeddings up in the text cache). Captions
travel with their clips through the same Grain stream, so they are sharded by process and resume exactly.
The clip recipe (which frames of which video, flips, image-joint frames) is `framedit_jax.data.clip_recipe`,
shared with the latent cache (`framedit_jax.vae.latent_cache`).
"""

import collections
import os
import threading

from absl import logging
import grain
import numpy as np
import tensorflow_datasets as tfds

from framedit_jax.data import builders
from framedit_jax.data import decode
from framedit_jax.data import clip_recipe
from framedit_jax.data import transforms

_NO_DECODE = tfds.decode.DeserializeMethod.DESERIALIZE_NO_DECODE


def _split_name(dataset):
  name, _, cfg = dataset.partition('/')
  if name not in builders.BUILDERS or name not in clip_recipe.DATASET_RULES:
    raise ValueError(f'data.dataset={dataset!r}: use one of {sorted(builders.BUILDERS)} (optionally /<config>)')
  return name, cfg or None


def get_builder(config, *, build=True):
  """The prepared TFDS builder for `config.data.dataset` (builds it from manual_dir when missing).

  `data.dataset` may name a builder config ('sample_videos/s128'); default: clip_recipe.DATASET_RULES.
  sample_videos and the generated moving_shapes build on first use without any download.
  Raises:
    FileNotFoundError: the dataset is not built and `data.manual_dir` is missing (one line: what to get).
  """
  name, cfg = _split_name(config.data.dataset)
  cfg = cfg or config.data.get('builder_config', None) or clip_recipe.DATASET_RULES[name].builder_config
  cls = builders.BUILDERS[name]
  builder = cls(config=cfg, data_dir=config.data.data_dir, file_format='array_record')
  if builder.is_prepared() or not build:
    return builder
  manual_dir = config.data.manual_dir
  if cls.NEEDS_MANUAL_DIR:
    if not manual_dir or not os.path.isdir(manual_dir):
      raise FileNotFoundError(
          f'{name}: data.manual_dir={manual_dir!r} is not a directory and {builder.data_dir} is not built. '
          f'{cls.MANUAL_DOWNLOAD_INSTRUCTIONS} Then run: python launch/prepare_data.py --dataset={name} '
          f'--manual_dir=DIR (or pass --config.data.manual_dir=DIR).')
  logging.info('Building %s into %s', name, builder.data_dir)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  return builder


def _example_fields(ex):
  """(jpeg frames, label, caption or None) of one serialized example."""
  f = ex.features.feature
  caption = f['caption'].bytes_list.value[0].decode('utf-8') if 'caption' in f else None
  return f['video'].bytes_list.value, int(f['label'].int64_list.value[0]), caption


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
    return self.full_record(i)[:2]

  def caption(self, i):
    """The caption of example i (text-video datasets; None for datasets without captions)."""
    return self.full_record(i)[2]

  def full_record(self, i):
    """(jpeg bytes per frame, label, caption or None) of example i; recently read records are cached."""
    if self._cache_limit:
      with self._cache_lock:
        hit = self._cache.get(i)
        if hit is not None:
          self._cache.move_to_end(i)
          return hit
    frames, label, caption = _example_fields(self._source()[int(self.indices[i])])
    frames = list(frames)
    if self._cache_limit:
      size = sum(len(f) for f in frames)
      with self._cache_lock:
        if i not in self._cache and size <= self._cache_limit:
          self._cache[i] = (frames, label, caption)
          self._cache_bytes += size
          while self._cache_bytes > self._cache_limit:
            _, (old, _, _) = self._cache.popitem(last=False)
            self._cache_bytes -= sum(len(f) for f in old)
    return frames, label, caption


def _decode_frames(frames, idx):
  return np.stack([decode.decode_jpeg(frames[int(i)]) for i in idx])


def make_example(source, recipe, seed, position, index):
  """One example of the stream.

  Args:
    source: ClipSource.
    recipe: clip_recipe.ClipRecipe.
    seed: config.seed.
    position: stream position (drives all randomness, see `clip_recipe.ClipRecipe.plan`).
    index: example index into `source` for this position.
  Returns:
    (video float32 (T, S, S, 3) in [-1, 1], label int, image labels int32 (use_image_num,), caption str or None).
  """
  frames, label, caption = source.full_record(index)  # read once: the plan needs its frame count, the clip its frames
  plan = recipe.plan(seed, position, index, len(source),
                     lambda i: len(frames) if i == index else len(source.record(i)[0]))
  video = transforms.spatial_transform(_decode_frames(frames, plan.frames), recipe.image_size, recipe.spatial,
                                       plan.flip)
  parts, image_labels = [video], []
  for other, f, img_flip in plan.images:
    other_frames, other_label = source.record(other)
    parts.append(transforms.spatial_transform(_decode_frames(other_frames, [f]), recipe.image_size,
                                              recipe.spatial, img_flip))
    image_labels.append(other_label if recipe.labelled else 0)
  return (np.concatenate(parts, axis=0), (label if recipe.labelled else 0),
          np.asarray(image_labels, np.int32), caption)


class VideoBatchIterator:
  """Iterator of host-local batches whose content is a pure function of (seed, step, process_index).

  See the module docstring. `get_state()` / `set_state()` save and restore the position.
  """

  def __init__(self, config, split, *, process_index=0, process_count=1):
    d = config.data  # validated by framedit_jax.train.validate (batch divisible by the process count)
    self.name, _ = _split_name(d.dataset)
    self.split = split
    self.seed = int(config.seed)
    self.global_batch = int(d.global_batch_size)
    self.local_batch = self.global_batch // process_count
    self.process_index = process_index
    cache_mb = d.get('record_cache_mb', 256)
    self.source = ClipSource(get_builder(config), split, cache_bytes=int(cache_mb) * 2**20)
    self.recipe = clip_recipe.ClipRecipe.from_config(config)
    workers = int(d.num_parallel_calls)
    self.workers = workers if workers > 0 else (os.cpu_count() or 1)
    self.prefetch = max(1, int(d.prefetch))
    self._order = clip_recipe.EpochOrder(self.seed, len(self.source))
    self._order_lock = threading.Lock()
    self._process_count = process_count
    self._step = 0
    self._it = None

  def __len__(self):
    """Examples in the split (one epoch)."""
    return len(self.source)

  def _index(self, position):
    with self._order_lock:
      return self._order(position)

  def positions(self, step):
    """Stream positions of this host's examples in batch `step`: (local_batch,) ints."""
    return clip_recipe.positions(step, self.global_batch, self.process_index, self._process_count)

  def _load(self, position):
    return make_example(self.source, self.recipe, self.seed, position, self._index(position))

  def _load_flat(self, k):
    """Example k of this host's flattened stream: slot k % local_batch of batch k // local_batch."""
    step, slot = divmod(int(k), self.local_batch)
    return self._load(self.positions(step)[slot])

  def _grain_iterator(self, step):
    """Grain pipeline from batch `step`: map(load one example) on `workers` threads, ordered, then batch.

    Examples (not whole batches) are the unit of parallel work, so the threads share every batch: at a few
    clips per batch, per-batch work units left one thread idle while the other finished its batch.
    """
    b = self.local_batch
    ds = grain.MapDataset.range(step * b, 2**62).map(self._load_flat)
    options = grain.ReadOptions(num_threads=self.workers, prefetch_buffer_size=(self.prefetch + 1) * b)
    return iter(ds.to_iter_dataset(options).batch(b, batch_fn=self._stack))

  def batch(self, step):
    """The host-local batch of `step` (computed synchronously; does not move the iterator)."""
    items = [self._load(q) for q in self.positions(step)]
    return self._stack(items)

  def _stack(self, items):
    return stack_examples(items, self.recipe.use_image_num)

  def __iter__(self):
    return self

  def __next__(self):
    if self._it is None:
      self._it = self._grain_iterator(self._step)
    batch = next(self._it)
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
    self.close()
    self._step = int(state['step'])

  def close(self):
    """Drops the Grain iterator (its prefetch threads stop); iterating again rebuilds it at the same step."""
    it, self._it = self._it, None
    if it is not None and hasattr(it, 'close'):
      it.close()


def stack_examples(items, use_image_num):
  """[(video, label, image labels[, caption]), ...] -> {'video': (B, T, ...), 'label': int32 (B,)} (+ 'label_image':
  int32 (B, use_image_num), each image frame's own label, when use_image_num > 0; + 'caption': str (B,) when the
  dataset has captions, e.g. text_video_folder)."""
  batch = {'video': np.stack([it[0] for it in items]), 'label': np.asarray([it[1] for it in items], np.int32)}
  if use_image_num:
    batch['label_image'] = np.stack([it[2] for it in items]).astype(np.int32)
  if len(items[0]) > 3 and items[0][3] is not None:
    batch['caption'] = np.asarray([it[3] for it in items], dtype=object)
  return batch


def make_dataset(config, split, *, process_index=0, process_count=1):
  """Host-local batch iterator over the JPEG-frame records of `config.data` (see the module docstring).

  Args:
    config: ConfigDict with `seed` and `data.{dataset, data_dir, manual_dir, num_frames, frame_interval,
      image_size, use_image_num, global_batch_size, num_parallel_calls, prefetch}`; optional
      `data.{builder_config, temporal_mode, spatial_mode, random_flip, label_subfolders, record_cache_mb}`
      (record_cache_mb, default 256: LRU cache of raw records per iterator; 0 disables).
    split: 'train', 'test', a TFDS slice, or for UCF101 'train1'..'test3'.
    process_index, process_count: this host and the number of hosts.
  Returns:
    VideoBatchIterator yielding {'video': float32 (B, T, H, W, 3) in [-1, 1], 'label': int32 (B,)} and, when
    use_image_num > 0, 'label_image': int32 (B, use_image_num); B = global_batch_size // process_count.
    (The latent cache, `data.use_latents`, is chosen by `framedit_jax.train.experiment.make_dataset`.)
  """
  return VideoBatchIterator(config, split, process_index=process_index, process_count=process_count)

r"""Input-pipeline throughput (clips/s) of make_dataset (JPEG-frame records on Grain) on sample_videos.

  python benchmarks/data_throughput.py --data_dir=/tmp/framedit_bench_tfds --workers=2
  python benchmarks/data_throughput.py --only=16x256x256 --label=grain --out=benchmarks/results/data_throughput.jsonl

Prints one JSON line per setting: clip shape, stored resolution, worker threads, clips/s (and the time per
batch). Settings: 16x128x128 (stored short side 128), 16x256x256 (stored short side 256, frame_interval 3,
taichi recipe: crop short side, resize, random flip) and the demo setting (8x32x32 from short side 64).
"""

import json
import time

from absl import app
from absl import flags
import ml_collections

from framedit_jax.data import pipeline

_DATA_DIR = flags.DEFINE_string('data_dir', '/tmp/framedit_bench_tfds', 'TFDS data_dir (built on first use).')
_WORKERS = flags.DEFINE_integer('workers', 2, 'data.num_parallel_calls (threads).')
_BATCH = flags.DEFINE_integer('batch', 8, 'global batch size.')
_CACHE = flags.DEFINE_integer('record_cache_mb', 0, 'data.record_cache_mb (0: every clip reads its record).')
_STEPS = flags.DEFINE_integer('steps', 12, 'timed batches (after 2 warm-up batches).')
_ONLY = flags.DEFINE_list('only', None, 'Run only these settings (names below).')
_LABEL = flags.DEFINE_string('label', '', 'Free-text label stored in every JSON line (e.g. loader, load).')
_OUT = flags.DEFINE_string('out', None, 'Append the JSON lines to this file too.')

SETTINGS = (  # (name, builder config, num_frames, frame_interval, image_size)
    ('16x128x128', 's128', 16, 3, 128),
    ('16x256x256', 's256', 16, 3, 256),
    ('demo_8x32x32', 's64', 8, 2, 32),
)


def run_setting(name, builder_config, num_frames, frame_interval, image_size):
  config = ml_collections.ConfigDict({'seed': 0, 'data': {
      'dataset': f'sample_videos/{builder_config}', 'data_dir': _DATA_DIR.value, 'manual_dir': None,
      'split': 'train', 'num_frames': num_frames, 'frame_interval': frame_interval, 'image_size': image_size,
      'use_image_num': 0, 'global_batch_size': _BATCH.value, 'shuffle_buffer': 0,
      'num_parallel_calls': _WORKERS.value, 'prefetch': 2, 'use_latents': False,
      'record_cache_mb': _CACHE.value}})
  it = pipeline.make_dataset(config, 'train')
  for _ in range(2):
    next(it)
  t0 = time.perf_counter()
  for _ in range(_STEPS.value):
    batch = next(it)
  dt = time.perf_counter() - t0
  it.close()
  clips = _STEPS.value * _BATCH.value
  return {'bench': 'data_throughput', 'label': _LABEL.value, 'setting': name, 'clip_shape': list(batch['video'].shape[1:]), 'stored': builder_config,
          'workers': _WORKERS.value, 'record_cache_mb': _CACHE.value, 'batch': _BATCH.value, 'clips_per_s': round(clips / dt, 1),
          's_per_batch': round(dt / _STEPS.value, 4)}


def main(argv):
  del argv
  for setting in SETTINGS:
    if _ONLY.value and setting[0] not in _ONLY.value:
      continue
    line = json.dumps(run_setting(*setting))
    print(line, flush=True)
    if _OUT.value:
      with open(_OUT.value, 'a') as f:
        f.write(line + '\n')


if __name__ == '__main__':
  app.run(main)

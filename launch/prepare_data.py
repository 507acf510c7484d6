r"""Builds a framedit-jax TFDS video dataset (array_record, JPEG frames) from raw downloads.

  python launch/prepare_data.py --dataset=taichi_hd --manual_dir=/data/taichi --data_dir=/data/tfds
  python launch/prepare_data.py --dataset=ucf101 --manual_dir=/data/UCF101 --data_dir=/data/tfds --config=s256
  python launch/prepare_data.py --dataset=sample_videos            # no download needed

Equivalent TFDS CLI call (the builders register on import):
  tfds build taichi_hd/full --imports=framedit_jax.data.builders --manual_dir=/data/taichi \
      --data_dir=/data/tfds --file_format=array_record
(UCF101's TFDS name is `ucf101_videos`: TFDS ships an unrelated `ucf101` builder.)

Prints the kept example count and the skip counts per reason for every split.
"""

import json
import os
import sys

from absl import flags
import ml_collections

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from framedit_jax.data import pipeline  # pylint: disable=wrong-import-position

_DATASET = flags.DEFINE_string('dataset', 'sample_videos', 'config.data.dataset value, e.g. taichi_hd, ucf101.')
_MANUAL_DIR = flags.DEFINE_string('manual_dir', None, 'Folder with the raw downloaded videos/frames.')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'TFDS data_dir to write to (default: ~/tensorflow_datasets).')
_CONFIG = flags.DEFINE_string('config', None, 'Builder config: full | s256 | s128 | s64 (default per dataset).')


def main(argv):
  del argv
  config = ml_collections.ConfigDict()
  config.data = ml_collections.ConfigDict({
      'dataset': _DATASET.value, 'data_dir': _DATA_DIR.value, 'manual_dir': _MANUAL_DIR.value,
      'builder_config': _CONFIG.value})
  builder = pipeline.get_builder(config)
  meta = builder.info.metadata or {}
  report = {
      'data_dir': builder.data_dir,
      'examples': {name: split.num_examples for name, split in builder.info.splits.items()},
      'skipped': meta.get('skipped', {}),
      'folds': {k: len(v) for k, v in (meta.get('folds') or {}).items()},
  }
  print(json.dumps(report, indent=1))


if __name__ == '__main__':
  from framedit_jax.train import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)

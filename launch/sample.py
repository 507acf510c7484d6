"""Sample videos from a trained (or converted) model: numbered mp4s plus a grid, for every kind of model.

  python launch/sample.py --workdir=/tmp/framedit_demo                     # the run's saved config
  python launch/sample.py --config=configs/ucf101_256.py --checkpoint=/ckpt/converted --num_samples=2048 \
      --config.sample.cfg_scale=7 --out_dir=/tmp/ucf_samples
  python launch/sample.py --config=configs/t2v_demo.py --workdir=/tmp/t2v_demo \
      --prompt="a big cartoon rabbit in a green meadow" --config.sample.sampler=dpmpp_2m --config.sample.num_steps=25
  python launch/sample.py --config=configs/t2v_demo.py --workdir=W --prompts_file=prompts.txt --out_dir=O

The config is `--config` or, without it, the one saved with the latest checkpoint of `--workdir`. The sampler is
`config.sample.sampler` ('ddpm' | 'ddim' | 'euler' | 'dpmpp_2m', or 'euler' for rectified flow) with
`config.sample.num_steps` steps and guidance `config.sample.cfg_scale` (against the null label, or the empty
prompt for text-to-video); see framedit_jax/diffusion/samplers.py. Weights: the EMA of the latest checkpoint in
--workdir (a text-to-video run: the export its `t2v_run.json` names), or --checkpoint.
"""

import os
import sys

from absl import flags
from absl import logging
from ml_collections import config_flags

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Path to a get_config() file (default: the run\'s saved '
                                          'config in --workdir).', lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Training run directory whose latest checkpoint (EMA) is used.')
_CHECKPOINT = flags.DEFINE_string('checkpoint', None, 'Converted/exported checkpoint dir (launch/convert_checkpoint.py).')
_OUT = flags.DEFINE_string('out_dir', None, 'Output directory (default <workdir or checkpoint>/samples_<sampler><steps>).')
_NUM = flags.DEFINE_integer('num_samples', None, 'Videos to generate (default config.sample.num_samples).')
_BATCH = flags.DEFINE_integer('batch_size', None, 'Videos per sampling call (default config.sample.batch_size).')
_LABELS = flags.DEFINE_list('labels', None, 'Class labels to cycle through (class-conditional models).')
_PROMPT = flags.DEFINE_multi_string('prompt', [], 'A text-to-video prompt (repeatable; default config.sample.prompts).')
_PROMPTS_FILE = flags.DEFINE_string('prompts_file', None, 'Text file with one text-to-video prompt per line.')
_SEED = flags.DEFINE_integer('seed', 0, 'Sampling seed.')
_NPY = flags.DEFINE_bool('save_npy', False, 'Also write each video losslessly as uint8 .npy next to its mp4.')


def main(argv):
  del argv
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)  # orbax/clu INFO logs are very chatty; --verbosity=0 restores them
  if not (_WORKDIR.value or _CHECKPOINT.value):
    raise ValueError('pass --workdir (a training run) or --checkpoint (a converted checkpoint).')
  from framedit_jax.diffusion.samplers import sampler_name  # pylint: disable=g-import-not-at-top
  from framedit_jax.train import sample_run  # pylint: disable=g-import-not-at-top
  config = _CONFIG.value or sample_run.run_config(_WORKDIR.value, _CHECKPOINT.value)
  prompts = sample_run.read_prompts(_PROMPT.value, _PROMPTS_FILE.value)
  out_dir = _OUT.value or os.path.join(_WORKDIR.value or _CHECKPOINT.value, f'samples_{sampler_name(config)}')
  labels = [int(x) for x in _LABELS.value] if _LABELS.value else None
  sample_run.sample_to_dir(config, out_dir, workdir=_WORKDIR.value, checkpoint=_CHECKPOINT.value,
                           num_samples=_NUM.value, batch_size=_BATCH.value, labels=labels, prompts=prompts,
                           seed=_SEED.value, save_npy=_NPY.value)


if __name__ == '__main__':
  from framedit_jax.train import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)

"""Render mp4s from prompts with a trained text-to-video run (classifier-free guidance against the null prompt).

  python launch/sample_t2v.py --workdir=/tmp/t2v_demo --prompt="a big cartoon rabbit in a green meadow" \
      --out_dir=/tmp/t2v_out [--sampler=dpmpp_2m --num_steps=25 --cfg_scale=4]
  python launch/sample_t2v.py --workdir=W --prompts_file=prompts.txt --out_dir=O

Prompts longer than the text encoder's token limit are truncated with a warning.
"""

import os
import sys

from absl import app
from absl import flags

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_WORKDIR = flags.DEFINE_string('workdir', None, 'Workdir of a launch/train_t2v.py run (holds t2v_run.json).')
_PROMPT = flags.DEFINE_multi_string('prompt', [], 'A prompt (repeatable).')
_PROMPTS_FILE = flags.DEFINE_string('prompts_file', None, 'Text file with one prompt per line.')
_OUT = flags.DEFINE_string('out_dir', None, 'Where the mp4s go.')
_SAMPLER = flags.DEFINE_enum('sampler', 'dpmpp_2m', ['ddpm', 'ddim', 'euler', 'dpmpp_2m'], 'Sampler.')
_STEPS = flags.DEFINE_integer('num_steps', 25, 'Sampling steps.')
_CFG = flags.DEFINE_float('cfg_scale', 4.0, 'Guidance scale (1 = no guidance).')
_SEED = flags.DEFINE_integer('seed', 0, 'Random seed.')
flags.mark_flags_as_required(['workdir', 'out_dir'])


def main(argv):
  del argv
  prompts = list(_PROMPT.value)
  if _PROMPTS_FILE.value:
    if not os.path.isfile(_PROMPTS_FILE.value):
      print(f'error: --prompts_file {_PROMPTS_FILE.value} not found.', file=sys.stderr)
      sys.exit(1)
    with open(_PROMPTS_FILE.value, encoding='utf-8') as f:
      prompts += [ln.strip() for ln in f if ln.strip()]
  from framedit_jax.train.t2v_sample import sample_run  # pylint: disable=g-import-not-at-top
  try:
    paths = sample_run(_WORKDIR.value, prompts, _OUT.value, sampler=_SAMPLER.value, num_steps=_STEPS.value,
                       cfg_scale=_CFG.value, seed=_SEED.value)
  except (FileNotFoundError, ValueError) as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(1)
  for p in paths:
    print(p)


if __name__ == '__main__':
  app.run(main)

"""Initialise a Latte / FrameDiT-G / FrameDiT-H / DiT3D / VideoDiT model from an image DiT checkpoint.

  python launch/init_from_image_dit.py --src=DiT-XL-2-256x256.pt --model=Latte-XL/2 --out=/ckpt/latte_init
  python launch/train.py --config=configs/taichi256.py --workdir=/w --config.model.name=Latte-XL/2 \
      --config.model.init_from=/ckpt/latte_init

Reads the official DiT file (framedit_jax.convert.weights: .pt via torch.load(weights_only=True), or .safetensors
/ .npz), converts it (framedit_jax.convert.image_dit), maps it onto the video model
(framedit_jax.convert.init_from_image_dit: Latte §3.3.4; a VideoDiT keeps every DiT leaf, the label table included,
and starts as the DiT on every frame) and writes an orbax checkpoint `{'params'}` + framedit_model.json (the layout
of launch/convert_checkpoint.py) and `init_report.json`: which params were copied, adapted, freshly initialised
and dropped. `--dit` / `--out_dir` are the older names of `--src` / `--out`. Errors are one `error:` line.
"""

import os
import sys

from absl import flags

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_SRC = flags.DEFINE_string('src', None, 'Official DiT checkpoint (.pt / .pth / .safetensors / .npz), e.g. '
                           'DiT-XL-2-256x256.pt.')
_MODEL = flags.DEFINE_string('model', None, "Video model name, e.g. 'Latte-XL/2', 'VideoDiT-XL/2'.")
_OUT = flags.DEFINE_string('out', None, 'New directory for the orbax checkpoint and init_report.json.')
_DIT_MODEL = flags.DEFINE_string('dit_model', None, "Image DiT name (default: same size/patch, 'DiT-XL/2').")
_TEMPORAL = flags.DEFINE_enum('temporal_init', 'dit', ['dit', 'fresh'],
                              "'dit': temporal block i takes DiT block i's matching params (official Latte "
                              "loading); 'fresh': temporal blocks keep their adaLN-Zero init.")
_WEIGHTS = flags.DEFINE_enum('weights', 'ema', ['ema', 'model'], 'Which weights of a training checkpoint.')
_SEED = flags.DEFINE_integer('seed', 0, 'PRNG seed of the freshly initialised params.')
_OVERRIDES = flags.DEFINE_multi_string('override', [], 'get_model override key=value, e.g. num_frames=16, '
                                       'num_classes=101 (architecture keys also apply to the DiT).')
flags.DEFINE_alias('dit', 'src')
flags.DEFINE_alias('out_dir', 'out')
flags.mark_flags_as_required(['src', 'model', 'out'])


def main(argv):
  del argv
  from framedit_jax.convert.checkpoint_io import parse_overrides  # pylint: disable=g-import-not-at-top
  from framedit_jax.convert.init_from_image_dit import write_init_checkpoint  # pylint: disable=g-import-not-at-top
  path, report = write_init_checkpoint(_SRC.value, _MODEL.value, _OUT.value, _DIT_MODEL.value, _TEMPORAL.value,
                                       _WEIGHTS.value, _SEED.value, parse_overrides(_OVERRIDES.value))
  c = report['counts']
  print(f'wrote {path}: {report["model"]} from {report["dit"]}: copied {c["copied"] / 1e6:.2f}M, fresh '
        f'{c["fresh"] / 1e6:.2f}M, dropped {c["dropped"] / 1e6:.2f}M values; see init_report.json')


if __name__ == '__main__':
  from framedit_jax.train import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)

"""Initialise a Latte / FrameDiT-G / FrameDiT-H / DiT3D model from an image DiT checkpoint (Latte §3.3.4).

  python launch/init_from_image_dit.py --dit=DiT-XL-2-256x256.pt --model=Latte-XL/2 --out_dir=/ckpt/latte_init
  python launch/train.py --config=configs/taichi256.py --workdir=/w --config.model.name=Latte-XL/2 \
      --config.model.init_from=/ckpt/latte_init

Reads the official DiT file (.pt via torch.load(weights_only=True), or .safetensors), converts it
(framedit_jax.convert.image_dit), maps it onto the video model (framedit_jax.convert.init_from_image_dit) and
writes an orbax checkpoint `{'params'}` + framedit_model.json (the layout of launch/convert_checkpoint.py) and
`init_report.json`: which params were copied, adapted, freshly initialised and dropped.
"""

import os
import sys

from absl import app
from absl import flags

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_DIT = flags.DEFINE_string('dit', None, 'Official DiT checkpoint (.pt / .pth / .safetensors), e.g. DiT-XL-2-256x256.pt.')
_MODEL = flags.DEFINE_string('model', None, "Video model name, e.g. 'Latte-XL/2', 'FrameDiTH-XL/128-512/2-concat'.")
_OUT = flags.DEFINE_string('out_dir', None, 'New directory for the orbax checkpoint and init_report.json.')
_DIT_MODEL = flags.DEFINE_string('dit_model', None, "Image DiT name (default: same size/patch, 'DiT-XL/2').")
_TEMPORAL = flags.DEFINE_enum('temporal_init', 'dit', ['dit', 'fresh'],
                              "'dit': temporal block i takes DiT block i's matching params (official Latte "
                              "loading); 'fresh': temporal blocks keep their adaLN-Zero init.")
_WEIGHTS = flags.DEFINE_enum('weights', 'ema', ['ema', 'model'], 'Which weights of a training checkpoint.')
_SEED = flags.DEFINE_integer('seed', 0, 'PRNG seed of the freshly initialised params.')
_OVERRIDES = flags.DEFINE_multi_string('override', [], 'get_model override key=value, e.g. num_frames=16, '
                                       'num_classes=101 (architecture keys also apply to the DiT).')
flags.mark_flags_as_required(['dit', 'model', 'out_dir'])


def _parse_value(text):
  low = text.lower()
  if low in ('true', 'false'):
    return low == 'true'
  for cast in (int, float):
    try:
      return cast(text)
    except ValueError:
      pass
  return text


def main(argv):
  del argv
  overrides = {}
  for item in _OVERRIDES.value:
    if '=' not in item:
      print(f'error: --override {item!r} must be key=value.', file=sys.stderr)
      sys.exit(1)
    key, value = item.split('=', 1)
    overrides[key.strip()] = _parse_value(value.strip())
  try:
    from framedit_jax.convert.init_from_image_dit import write_init_checkpoint  # pylint: disable=g-import-not-at-top
    path, report = write_init_checkpoint(_DIT.value, _MODEL.value, _OUT.value, _DIT_MODEL.value, _TEMPORAL.value,
                                         _WEIGHTS.value, _SEED.value, overrides)
  except (FileNotFoundError, FileExistsError, ValueError, KeyError, TypeError) as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(1)
  c = report['counts']
  print(f'wrote {path}: {report["model"]} from {report["dit"]}: copied {c["copied"] / 1e6:.2f}M, fresh '
        f'{c["fresh"] / 1e6:.2f}M, dropped {c["dropped"] / 1e6:.2f}M values; see init_report.json')


if __name__ == '__main__':
  app.run(main)

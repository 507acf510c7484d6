"""Convert an official FrameDiT / Latte PyTorch checkpoint to an orbax checkpoint framedit_jax samples from.

  python launch/convert_checkpoint.py --src=/ckpt/0100000.pt \
      --model=FrameDiTH-XL/128-512/2-concat --out=/ckpt/framedit_h_xl_jax
  python launch/sample.py --config=configs/taichi256.py --checkpoint=/ckpt/framedit_h_xl_jax \
      --config.model.name=FrameDiTH-XL/128-512/2-concat

`--src` is read by framedit_jax.convert.weights (.pt/.pth/.bin/.ckpt with `torch.load(weights_only=True)`, torch
imported only then; .safetensors / .npz without torch) and the 'ema' weights are picked (official train.py saves
{'model', 'ema', 'opt', ...}; `--weights=model` for the raw ones). Sizes (input_size, num_frames, in_channels,
num_classes, learn_sigma) are read off the tensors; `--override key=value` sets any other `get_model` option.
Output layout: framedit_jax/convert/checkpoint_io.py (`{'params': ...}` via ocp.StandardCheckpointer +
framedit_model.json). A bad file answers in one `error:` line.
"""

import os
import sys

from absl import flags

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_SRC = flags.DEFINE_string('src', None, 'Official checkpoint: .pt / .pth / .bin / .ckpt / .safetensors / .npz.')
_MODEL = flags.DEFINE_string('model', None, "Official model name, e.g. 'Latte-XL/2' (framedit_jax.models.list_models).")
_OUT = flags.DEFINE_string('out', None, 'New directory for the orbax checkpoint.')
_WEIGHTS = flags.DEFINE_enum('weights', 'ema', ['ema', 'model'], 'Which weights of a training checkpoint.')
_OVERRIDES = flags.DEFINE_multi_string('override', [], 'get_model override key=value (int/float/bool/str).')
_ALLOW_PICKLE = flags.DEFINE_bool('allow_pickle', False,
                                  'torch.load(weights_only=False): RUNS the pickle\'s code; only for files you trust.')
flags.DEFINE_alias('out_dir', 'out')
flags.mark_flags_as_required(['src', 'model', 'out'])


def main(argv):
  del argv
  from framedit_jax.convert import checkpoint_io  # pylint: disable=g-import-not-at-top
  from framedit_jax.convert.weights import read_state_dict  # pylint: disable=g-import-not-at-top
  overrides = checkpoint_io.parse_overrides(_OVERRIDES.value)
  state_dict = read_state_dict(_SRC.value, '--src', _WEIGHTS.value, allow_pickle=_ALLOW_PICKLE.value,
                               hint='pass an official checkpoint such as checkpoints/0100000.pt.')
  out = checkpoint_io.convert_and_save(state_dict, _MODEL.value, _OUT.value, source=state_dict.source,
                                       weights=state_dict.which, **overrides)
  print(f'wrote {out} ({state_dict.which} weights of {_SRC.value} as {_MODEL.value})')


if __name__ == '__main__':
  from framedit_jax.train import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)

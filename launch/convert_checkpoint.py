"""Convert an official FrameDiT / Latte PyTorch checkpoint to an orbax checkpoint framedit_jax samples from.

  python launch/convert_checkpoint.py --checkpoint=/ckpt/0100000.pt \
      --model=FrameDiTH-XL/128-512/2-concat --out_dir=/ckpt/framedit_h_xl_jax
  python launch/sample.py --config=configs/taichi256.py --checkpoint=/ckpt/framedit_h_xl_jax \
      --config.model.name=FrameDiTH-XL/128-512/2-concat

Reads .pt/.pth with `torch.load(weights_only=True)` (torch is imported only here) and picks the 'ema' weights
(official train.py saves {'model', 'ema', 'optimizer', ...}; `--weights=model` for the raw ones), or a
.safetensors file (no torch). Sizes (input_size, num_frames, in_channels, num_classes, learn_sigma) are read off
the tensors; `--override key=value` sets any other `get_model` option. Output layout: see
framedit_jax/convert/checkpoint_io.py (`{'params': ...}` via ocp.StandardCheckpointer + framedit_model.json).
"""

import os
import sys

from absl import flags

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_CKPT = flags.DEFINE_string('checkpoint', None, 'Official checkpoint: .pt / .pth / .safetensors.')
_MODEL = flags.DEFINE_string('model', None, "Official model name, e.g. 'Latte-XL/2' (framedit_jax.models.list_models).")
_OUT = flags.DEFINE_string('out_dir', None, 'New directory for the orbax checkpoint.')
_WEIGHTS = flags.DEFINE_enum('weights', 'ema', ['ema', 'model'], 'Which weights of a training checkpoint.')
_OVERRIDES = flags.DEFINE_multi_string('override', [], 'get_model override key=value (int/float/bool/str).')
_ALLOW_PICKLE = flags.DEFINE_bool('allow_pickle', False,
                                  'torch.load(weights_only=False): runs pickle code; only for files you trust.')
flags.mark_flags_as_required(['checkpoint', 'model', 'out_dir'])


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


def _load_torch(path, allow_pickle):
  import torch  # pylint: disable=g-import-not-at-top
  try:
    return torch.load(path, map_location='cpu', weights_only=not allow_pickle)
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f'torch.load(weights_only=True) failed on {path} ({type(e).__name__}); re-save only the '
                     "state_dict (torch.save(ckpt['ema'], p)) or pass --allow_pickle for a trusted file.") from e


def main(argv):
  del argv
  from framedit_jax.convert import checkpoint_io  # pylint: disable=g-import-not-at-top
  path = _CKPT.value
  overrides = {}
  for item in _OVERRIDES.value:
    if '=' not in item:
      print(f'error: --override {item!r} must be key=value.', file=sys.stderr)
      sys.exit(1)
    key, value = item.split('=', 1)
    overrides[key.strip()] = _parse_value(value.strip())
  try:
    if not os.path.isfile(path):
      raise FileNotFoundError(f'--checkpoint {path} not found.')
    if path.endswith('.safetensors'):
      state_dict, which = checkpoint_io.load_safetensors(path), 'state_dict'
    elif path.endswith(('.pt', '.pth', '.bin', '.ckpt')):
      state_dict, which = checkpoint_io.select_state_dict(_load_torch(path, _ALLOW_PICKLE.value), _WEIGHTS.value)
    else:
      raise ValueError(f'--checkpoint {path}: expected a .pt/.pth or .safetensors file.')
    out = checkpoint_io.convert_and_save(state_dict, _MODEL.value, _OUT.value, source=os.path.abspath(path),
                                         weights=which, **overrides)
  except (FileNotFoundError, FileExistsError, ValueError, KeyError, TypeError) as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(1)
  print(f'wrote {out} ({which} weights of {path} as {_MODEL.value})')


if __name__ == '__main__':
  from framedit_jax.train import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)

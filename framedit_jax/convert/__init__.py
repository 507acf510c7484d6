"""Foreign weights -> framedit_jax Flax params (no torch import in this package; torch files are read lazily).

`weights`: the one reader of .pt/.pth/.bin/.ckpt/.safetensors/.npz files and model folders, and the one walker
that maps a state_dict onto a Flax tree. `official` / `image_dit` / `t2v`: FrameDiT / Latte, DiT and T2V key names.
`checkpoint_io`: our converted orbax checkpoints. Names below are imported on first use (the reader alone does
not pull in the models).
"""

import importlib

_EXPORTS = {'convert_and_save': 'checkpoint_io', 'load_params': 'checkpoint_io', 'save_params': 'checkpoint_io',
            'convert_state_dict': 'official', 'infer_overrides': 'official', 'read_state_dict': 'weights',
            'select_state_dict': 'weights'}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
  if name in _EXPORTS:
    return getattr(importlib.import_module(f'framedit_jax.convert.{_EXPORTS[name]}'), name)
  raise AttributeError(f'module framedit_jax.convert has no attribute {name!r}')

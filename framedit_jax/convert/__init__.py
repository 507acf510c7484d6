"""Official FrameDiT / Latte PyTorch checkpoints -> framedit_jax Flax params (no torch import in this package)."""

from framedit_jax.convert.checkpoint_io import convert_and_save, load_params, save_params, select_state_dict
from framedit_jax.convert.official import convert_state_dict, infer_overrides

__all__ = ['convert_and_save', 'convert_state_dict', 'infer_overrides', 'load_params', 'save_params',
           'select_state_dict']

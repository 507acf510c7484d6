"""PyTorch AutoencoderKL weights (diffusers or original LDM/SD names) -> Flax params of `AutoencoderKL`.

Supported inputs:
  * diffusers format: `diffusion_pytorch_model.safetensors` / `.bin` (e.g. stabilityai/sd-vae-ft-ema), with
    either current attention names (`to_q/to_k/to_v/to_out.0`) or legacy ones (`query/key/value/proj_attn`);
  * original LDM / Stable Diffusion names: a VAE-only file (`encoder.down.0.block.0...`, e.g.
    vae-ft-ema-560000-ema-pruned.ckpt) or a full SD checkpoint whose VAE lives under `first_stage_model.`.

Every VAE key must map onto exactly one parameter and every parameter must be filled; otherwise
`ConversionError` lists the missing and unexpected keys. Keys outside the VAE are skipped only where the
format defines them as such: everything without the `first_stage_model.` prefix in a full SD checkpoint,
and the training-only `loss.*` (discriminator/LPIPS) and `model_ema.*` entries of LDM VAE checkpoints.

Files are read by `framedit_jax.convert.weights.read_state_dict` (safetensors without torch; `.bin/.ckpt/.pt`
with `torch.load(weights_only=True)`, torch imported lazily), and mapped by its `to_flax` (one report format).
"""

import os
import re
from typing import Any, Mapping

import numpy as np

from framedit_jax.convert.weights import WeightsError, flat_shapes, read_state_dict, to_flax

LDM_PREFIX = 'first_stage_model.'
LDM_IGNORED_PREFIXES = ('loss.', 'model_ema.')
WHERE_TO_GET = (
    'expected diffusion_pytorch_model.safetensors of stabilityai/sd-vae-ft-ema '
    '(https://huggingface.co/stabilityai/sd-vae-ft-ema), an SD .ckpt/.safetensors with first_stage_model.* '
    'keys (or vae-ft-ema-560000-ema-pruned.ckpt), or a folder written by '
    'framedit_jax.vae.checkpoint.save_vae_params; or set --config.vae.name=identity for pixel space')

ConversionError = WeightsError  # a state dict that does not match the AutoencoderKL parameter tree


# ------------------------------------------------------------------ reading files
def load_state_dict(path: str) -> dict[str, np.ndarray]:
  """Reads a torch VAE file (or a diffusers model / pipeline folder) into float32 numpy arrays.

  Args:
    path: `.safetensors`, `.bin`, `.ckpt`, `.pt`, or a folder holding `diffusion_pytorch_model.safetensors|.bin`
      (also under `vae/` of a pipeline folder). Read by `framedit_jax.convert.weights.read_state_dict`
      (`torch.load(weights_only=True)`, torch imported only for torch files).
  Returns:
    {torch key: np.float32 array}. A `{'state_dict': ...}` wrapper (Lightning .ckpt) is unwrapped.
  Raises:
    FileNotFoundError: path (or the weights inside the folder) does not exist.
    WeightsError (a ValueError): a damaged file or an unsafe pickle (refused before it runs), in one line.
  """
  sd = read_state_dict(path, 'VAE weights', subfolder='vae', prefixes=(), hint=WHERE_TO_GET)
  return {k: np.asarray(v, np.float32) for k, v in sd.items()}


# ------------------------------------------------------------------ key normalisation
def is_ldm_format(keys) -> bool:
  """True for original LDM/SD key names (`encoder.down.0.block.0...` or `first_stage_model.*`)."""
  return any(k.startswith(LDM_PREFIX) or k.startswith(('encoder.down.', 'encoder.mid.', 'decoder.up.',
                                                        'decoder.mid.')) for k in keys)


def _ldm_num_up_blocks(keys):
  ids = {int(m.group(1)) for k in keys if (m := re.match(r'decoder\.up\.(\d+)\.', k))}
  return max(ids) + 1 if ids else 0


def ldm_to_diffusers_key(key: str, num_up_blocks: int) -> str:
  """Renames one LDM VAE key to its diffusers name (decoder up-block order is reversed in diffusers)."""
  k = key
  k = re.sub(r'^encoder\.down\.(\d+)\.block\.(\d+)\.', r'encoder.down_blocks.\1.resnets.\2.', k)
  k = re.sub(r'^encoder\.down\.(\d+)\.downsample\.', r'encoder.down_blocks.\1.downsamplers.0.', k)
  k = re.sub(r'^decoder\.up\.(\d+)\.block\.(\d+)\.',
             lambda m: f'decoder.up_blocks.{num_up_blocks - 1 - int(m.group(1))}.resnets.{m.group(2)}.', k)
  k = re.sub(r'^decoder\.up\.(\d+)\.upsample\.',
             lambda m: f'decoder.up_blocks.{num_up_blocks - 1 - int(m.group(1))}.upsamplers.0.', k)
  k = re.sub(r'^(encoder|decoder)\.mid\.block_(\d)\.',
             lambda m: f'{m.group(1)}.mid_block.resnets.{int(m.group(2)) - 1}.', k)
  k = re.sub(r'^(encoder|decoder)\.mid\.attn_1\.', r'\1.mid_block.attentions.0.', k)
  k = re.sub(r'^(encoder|decoder)\.norm_out\.', r'\1.conv_norm_out.', k)
  k = k.replace('.nin_shortcut.', '.conv_shortcut.')
  if '.attentions.0.' in k:
    k = re.sub(r'\.attentions\.0\.norm\.', '.attentions.0.group_norm.', k)
    k = re.sub(r'\.attentions\.0\.(q|k|v)\.', lambda m: f'.attentions.0.to_{m.group(1)}.', k)
    k = k.replace('.attentions.0.proj_out.', '.attentions.0.to_out.0.')
  return k


_LEGACY_ATTN = {'query': 'to_q', 'key': 'to_k', 'value': 'to_v', 'proj_attn': 'to_out.0'}


def normalize_state_dict(sd: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], list[str]]:
  """Returns ({diffusers-style key: array}, [skipped non-VAE keys]) for any supported naming."""
  keys = list(sd)
  skipped = []
  if is_ldm_format(keys):
    if any(k.startswith(LDM_PREFIX) for k in keys):
      skipped = [k for k in keys if not k.startswith(LDM_PREFIX)]
      sd = {k[len(LDM_PREFIX):]: v for k, v in sd.items() if k.startswith(LDM_PREFIX)}
    skipped += [k for k in sd if k.startswith(LDM_IGNORED_PREFIXES)]
    sd = {k: v for k, v in sd.items() if not k.startswith(LDM_IGNORED_PREFIXES)}
    n_up = _ldm_num_up_blocks(sd)
    out = {ldm_to_diffusers_key(k, n_up): v for k, v in sd.items()}
  else:
    out = {}
    for k, v in sd.items():
      m = re.match(r'^(.*\.attentions\.0\.)(query|key|value|proj_attn)\.(weight|bias)$', k)
      out[f'{m.group(1)}{_LEGACY_ATTN[m.group(2)]}.{m.group(3)}' if m else k] = v
  return out, skipped


# ------------------------------------------------------------------ diffusers key -> flax path
def diffusers_key_to_flax_path(key: str) -> tuple[str, ...]:
  """`encoder.down_blocks.0.resnets.1.norm1.weight` -> ('encoder','down_blocks_0','resnets_1','norm1','weight')."""
  parts = key.split('.')
  out = []
  for p in parts:
    if p.isdigit() and out:
      out[-1] = f'{out[-1]}_{p}'
    else:
      out.append(p)
  return tuple(out)


def _to_flax(arr, target_shape, torch_leaf):
  """Torch layout -> flax layout for one leaf; returns None on a shape mismatch."""
  a = np.asarray(arr, np.float32)
  if len(target_shape) == 4 and a.ndim == 4:  # conv (O, I, kh, kw) -> (kh, kw, I, O)
    a = a.transpose(2, 3, 1, 0)
  elif len(target_shape) == 2 and torch_leaf == 'weight':  # linear (O, I) or legacy 1x1 conv (O, I, 1, 1)
    if a.ndim == 4 and a.shape[2:] == (1, 1):
      a = a[:, :, 0, 0]
    if a.ndim != 2:
      return None
    a = a.T
  return a if tuple(a.shape) == tuple(target_shape) else None


def convert_state_dict(state_dict: Mapping[str, Any], target_params: Mapping[str, Any]) -> dict:
  """Maps a torch AutoencoderKL state dict onto a Flax params tree.

  Args:
    state_dict: {torch key: array}, diffusers (new or legacy attention names) or LDM/SD naming.
    target_params: the Flax `params` tree (or its `jax.eval_shape` ShapeDtypeStructs) of the intended
      `AutoencoderKL`; only shapes are used.
  Returns:
    A nested dict of float32 numpy arrays with the structure of `target_params`.
  Raises:
    ConversionError: listing unexpected torch keys, missing Flax params and shape mismatches.
  """
  sd, _ = normalize_state_dict(state_dict)
  targets = flat_shapes(target_params)

  def rename(key):
    path = diffusers_key_to_flax_path(key)
    leaf = path[-1]
    if leaf == 'weight':
      fpath = path[:-1] + (('kernel',) if path[:-1] + ('kernel',) in targets else ('scale',))
    elif leaf == 'bias':
      fpath = path
    else:
      return None
    return fpath, lambda a: _to_flax(a, targets[fpath], leaf) if fpath in targets else None

  return to_flax(sd, targets, rename, 'AutoencoderKL state dict', hint=WHERE_TO_GET)


def infer_vae_config(state_dict: Mapping[str, Any]) -> dict:
  """Reads block_out_channels, layers_per_block and latent_channels off a (any naming) state dict.

  Returns kwargs for `AutoencoderKL` (norm_num_groups cannot be inferred and is left out).
  """
  sd, _ = normalize_state_dict(state_dict)
  chans, layers = {}, set()
  for k, v in sd.items():
    if m := re.match(r'^encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.conv1\.weight$', k):
      chans[int(m.group(1))] = int(np.shape(v)[0])
      layers.add(int(m.group(2)))
  if not chans or 'post_quant_conv.weight' not in sd or 'encoder.conv_in.weight' not in sd:
    raise ConversionError('state dict has no AutoencoderKL encoder/post_quant_conv keys (is it a VAE?).')
  return dict(block_out_channels=tuple(chans[i] for i in range(len(chans))),
              layers_per_block=max(layers) + 1,
              latent_channels=int(np.shape(sd['post_quant_conv.weight'])[0]),
              in_channels=int(np.shape(sd['encoder.conv_in.weight'])[1]),
              out_channels=int(np.shape(sd['decoder.conv_out.weight'])[0]))

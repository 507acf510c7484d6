"""Tiny T2V and DP-VAE configs (and their launch/train.py overrides) for the one-trainer tests."""

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

T2V_TINY = {
    'data.image_size': 16, 'data.num_frames': 4, 'data.global_batch_size': 2,
    'model.overrides.num_layers': 1, 'model.overrides.attention_head_dim': 8, 'model.overrides.cross_attention_dim': 32,
    'model.overrides.patch_size': 4, 'text.max_length': 16,
    'train.num_steps': 4, 'train.ckpt_every': 2, 'train.log_every': 1, 'train.keep': 3, 'sample.num_steps': 2,
}
DPVAE_TINY = {
    'data.image_size': 16, 'data.num_frames': 4, 'data.global_batch_size': 2,
    'dpvae.t_g': 2, 'dpvae.block_out_channels': (8, 8), 'dpvae.norm_num_groups': 4,
    'dpvae.disc_channels': 4, 'dpvae.disc_layers': 1, 'dpvae.disc_start': 2, 'dpvae.num_recon_videos': 1,
    'dpvae.optim.lr': 1e-3, 'train.num_steps': 4, 'train.ckpt_every': 2, 'train.log_every': 1, 'train.keep': 3,
}
CONFIG_FILES = {'t2v': 'configs/t2v_demo.py', 'dpvae': 'configs/dpvae_demo.py', 'video': 'configs/demo.py'}


def _set(config, overrides):
  for k, v in overrides.items():
    node = config
    *parents, leaf = k.split('.')
    for p in parents:
      node = node[p]
    node[leaf] = v
  return config


def tiny(task, data_dir, **extra):
  """The tiny config of ``task`` ('t2v', 'dpvae', 'video') with ``data.data_dir`` and dotted ``extra``."""
  sys.path.insert(0, REPO)
  if task == 'video':
    import _train_utils  # pylint: disable=g-import-not-at-top
    return _train_utils.tiny_config(data_dir, **extra)
  from configs import dpvae_demo, t2v_demo  # pylint: disable=g-import-not-at-top
  config = (t2v_demo if task == 't2v' else dpvae_demo).get_config()
  if task == 'dpvae':
    config.data.data_dir = str(data_dir)
  return _set(config, {**(T2V_TINY if task == 't2v' else DPVAE_TINY), **extra})


def cli_overrides(task, data_dir, **extra):
  """``--config.k=v`` arguments of ``tiny(task, data_dir, **extra)`` for launch/train.py."""
  if task == 'video':
    import _train_utils  # pylint: disable=g-import-not-at-top
    over = dict(_train_utils.TINY_OVERRIDES, **{'data.data_dir': data_dir}, **extra)
  else:
    over = dict(T2V_TINY if task == 't2v' else DPVAE_TINY, **extra)
    if task == 'dpvae':
      over['data.data_dir'] = data_dir
  fmt = lambda v: ','.join(str(x) for x in v) if isinstance(v, tuple) else str(v)
  return [f'--config.{k}={fmt(v)}' for k, v in over.items()]


def parallel_configs(data_dir):
  """Configs whose global batch (8) splits over data=2 x fsdp=4, wide enough that fsdp shards some kernels
  (mesh.fsdp_spec skips arrays under 2**14 elements); the T2V LoRA case shards the frozen base weights."""
  wide = {'data.global_batch_size': 8, 'model.overrides.attention_head_dim': 16,
          'model.overrides.cross_attention_dim': 64}
  return {
      't2v': tiny('t2v', data_dir, **wide),
      't2v_lora': tiny('t2v', data_dir, **dict(wide, **{'lora.enabled': True, 'lora.rank': 4})),
      'dpvae': tiny('dpvae', data_dir, **{'data.global_batch_size': 8, 'dpvae.block_out_channels': (64, 64),
                                          'dpvae.norm_num_groups': 8}),
  }

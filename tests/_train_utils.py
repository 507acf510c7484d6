"""Shared helpers for the training tests: a tiny demo config and subprocess launching."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Tiny FrameDiT-H on 16x16 pixel clips of the embedded sample videos: compiles and steps in seconds.
TINY_OVERRIDES = {
    'model.overrides.hidden_size': 32,
    'model.overrides.depth': 2,
    'model.overrides.num_heads': 2,
    'data.image_size': 16,
    'data.num_frames': 4,
    'data.frame_interval': 2,
    'data.global_batch_size': 4,
    'train.num_steps': 6,
    'train.ckpt_every': 3,
    'train.log_every': 1,
    'sample.num_steps': 2,
    'sample.num_samples': 1,
}


def tiny_config(data_dir, **extra):
  """configs/demo.py shrunk by TINY_OVERRIDES (+ ``extra`` dotted overrides)."""
  sys.path.insert(0, REPO)
  from configs import demo  # pylint: disable=g-import-not-at-top
  config = demo.get_config()
  config.data.data_dir = str(data_dir)
  for k, v in {**TINY_OVERRIDES, **extra}.items():
    node = config
    *parents, leaf = k.split('.')
    for p in parents:
      node = node[p]
    node[leaf] = v
  return config


def train_cmd(workdir, data_dir, **extra):
  args = [sys.executable, os.path.join(REPO, 'launch', 'train.py'), '--config=' + os.path.join(REPO, 'configs', 'demo.py'),
          f'--workdir={workdir}', f'--config.data.data_dir={data_dir}']
  args += [f'--config.{k}={v}' for k, v in {**TINY_OVERRIDES, **extra}.items()]
  return args


def env(num_devices=1):
  """This environment with ``num_devices`` host CPU devices; other XLA flags (conftest's fast-compile ones) kept."""
  e = dict(os.environ)
  flags = [f for f in e.get('XLA_FLAGS', '').split() if not f.startswith('--xla_force_host_platform_device_count')]
  e['XLA_FLAGS'] = ' '.join([f'--xla_force_host_platform_device_count={num_devices}'] + flags)
  e['TF_CPP_MIN_LOG_LEVEL'] = '2'
  e['PYTHONUNBUFFERED'] = '1'
  return e


def run(cmd, num_devices=1, timeout=600):
  return subprocess.run(cmd, env=env(num_devices), capture_output=True, text=True, timeout=timeout, cwd=REPO)


def scalars(workdir, tag):
  """{step: value} of TensorBoard scalar ``tag`` (e.g. 'train/loss') in ``workdir``'s event files."""
  import glob  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  out = {}
  for path in sorted(glob.glob(os.path.join(str(workdir), 'events.out.tfevents.*'))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for v in event.summary.value:
        if v.tag == tag:
          out[event.step] = float(tf.make_ndarray(v.tensor)) if v.HasField('tensor') else float(v.simple_value)
  return out

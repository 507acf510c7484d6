"""The one config-argument grammar, `--config=configs/X.py:k=v,...`, and the builder of the 256² benchmarks.

A config file's `get_config(arg=None)` passes the text after ':' to `parse_arg` with the keys it accepts and gets
a dict of typed values back. Grammar: comma-separated items, each `key=value` or a bare `key` for a flag
(`runlocal`); values cannot contain ',' (use `--config.a.b=v` for those). An unknown key, a bare non-flag key,
a repeated key or a value of the wrong type raises a one-line `ValueError` naming the config, the key and the
keys it takes (`framedit_jax.train.cli.run` prints it as `error: ...`).

Every benchmark config (taichi128, taichi256, sky256, ffs256, ucf101_256) takes `BENCHMARK_KEYS`:
`runlocal`, `model`, and the data overrides `data_dir`, `manual_dir`, `frame_interval`, `num_frames`,
`use_image_num`, written into `config.data` last (after `runlocal`).
"""

from __future__ import annotations

_BOOL = {'true': True, '1': True, 'yes': True, 'false': False, '0': False, 'no': False}

DATA_KEYS = {'data_dir': str, 'manual_dir': str, 'frame_interval': int, 'num_frames': int, 'use_image_num': int}
BENCHMARK_KEYS = {'runlocal': bool, 'model': str, **DATA_KEYS}


def parse_arg(arg: str | None, keys: dict[str, type], config: str) -> dict:
  """`'runlocal,model=Latte-XL/2'` -> `{'runlocal': True, 'model': 'Latte-XL/2'}`, checked against `keys`.

  Args:
    arg: the config argument (text after ':' in `--config=FILE:ARG`), or None / '' for none.
    keys: accepted key -> type (`bool` keys may be bare; `int`, `float`, `str` need `=value`).
    config: the config's name for messages, e.g. 'configs/taichi256.py'.
  Returns:
    Only the keys given, with typed values.
  Raises:
    ValueError: unknown key, repeated key, missing or badly typed value (one line).
  """
  out = {}
  takes = ', '.join(keys) if keys else 'no config argument'
  for item in (arg or '').split(','):
    item = item.strip()
    if not item:
      continue
    key, has_value, value = item.partition('=')
    key = key.strip()
    if key not in keys:
      raise ValueError(f'--config={config}:{arg}: unknown key {key!r}; {config} takes {takes}.')
    if key in out:
      raise ValueError(f'--config={config}:{arg}: {key!r} is given twice.')
    kind = keys[key]
    if kind is bool:
      if has_value and value.lower() not in _BOOL:
        raise ValueError(f'--config={config}:{arg}: {key}={value!r} must be true or false.')
      out[key] = _BOOL[value.lower()] if has_value else True
      continue
    if not has_value or not value:
      raise ValueError(f'--config={config}:{arg}: {key!r} needs a value ({key}=...).')
    try:
      out[key] = kind(value)
    except ValueError:
      raise ValueError(f'--config={config}:{arg}: {key}={value!r} must be {kind.__name__}.') from None
  return out


def apply_data_overrides(config, args: dict):
  """Writes the `DATA_KEYS` present in `args` (from `parse_arg`) into `config.data`; returns `config`."""
  for key in DATA_KEYS:
    if key in args:
      config.data[key] = args[key]
  return config


def dataset_256_config(dataset: str, arg: str | None, name: str):
  """FrameDiT-H-XL/2 at 256x256, 16 frames, frame_interval 3, on `dataset` (official settings).

  `arg` takes `BENCHMARK_KEYS`: `runlocal` shrinks model, batch, resolution (32) and steps; `model` picks a
  registered model; the data overrides are applied last. `name` is the config file, for error messages.
  """
  from configs import taichi128  # pylint: disable=g-import-not-at-top  (taichi128 imports this module)
  args = parse_arg(arg, BENCHMARK_KEYS, name)
  config = taichi128.base_config(args)
  config.data.dataset = dataset
  config.data.image_size = 256
  config.data.num_frames = 16
  config.data.frame_interval = 3
  if args.get('runlocal'):
    config.data.image_size = 32
    config.data.num_frames = 4
    config.data.frame_interval = 1
  return apply_data_overrides(config, args)

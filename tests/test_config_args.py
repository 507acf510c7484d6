"""The config-argument grammar `--config=configs/X.py:k=v,...` (configs/common.py), for every shipped config.

Reference: the grammar itself. Every named override reaches the field it names in every benchmark config
(a config that silently drops one fails), an unknown key or a bad value is one ValueError line naming the key and
what the config takes, and through a launch script that line is the whole output (exit status 1).
"""

import importlib
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from configs import common  # pylint: disable=g-import-not-at-top,wrong-import-position

BENCHMARKS = ['taichi128', 'taichi256', 'sky256', 'ffs256', 'ucf101_256']
NO_ARGUMENT = ['default', 'demo', 'dpvae_demo', 'dpvae_diffusion_demo', 'motion_study', 't2v_demo', 't2v_pexels']
# A value for each named override, none of them any config's default.
VALUES = {'data_dir': '/d/tfds', 'manual_dir': '/d/raw', 'frame_interval': 5, 'num_frames': 7, 'use_image_num': 3}


def _get(name, arg=None):
  return importlib.import_module(f'configs.{name}').get_config(arg)


def test_parse_arg_types_flags_and_values():
  keys = {'runlocal': bool, 'model': str, 'num_frames': int, 'lr': float}
  assert common.parse_arg('runlocal,model=Latte-XL/2,num_frames=8,lr=2e-4', keys, 'c.py') == {
      'runlocal': True, 'model': 'Latte-XL/2', 'num_frames': 8, 'lr': 2e-4}
  assert common.parse_arg('runlocal=false', keys, 'c.py') == {'runlocal': False}
  assert common.parse_arg(None, keys, 'c.py') == {} and common.parse_arg('', keys, 'c.py') == {}


@pytest.mark.parametrize('arg,expected', [
    ('runlokal', "unknown key 'runlokal'; configs/taichi128.py takes runlocal, model, data_dir"),
    ('num_frames=abc', "num_frames='abc' must be int"),
    ('num_frames', "'num_frames' needs a value"),
    ('runlocal=maybe', "runlocal='maybe' must be true or false"),
    ('data_dir=/a,data_dir=/b', "'data_dir' is given twice"),
])
def test_bad_argument_is_one_line_error(arg, expected):
  with pytest.raises(ValueError) as err:
    _get('taichi128', arg)
  assert expected in str(err.value) and '\n' not in str(err.value)


@pytest.mark.parametrize('name', BENCHMARKS)
@pytest.mark.parametrize('key', sorted(VALUES))
def test_every_benchmark_config_honours_every_named_override(name, key):
  base = _get(name)
  assert base.data[key] != VALUES[key]
  config = _get(name, f'{key}={VALUES[key]}')
  assert config.data[key] == VALUES[key]
  # ... and only that field moves, also after runlocal.
  for other in VALUES:
    if other != key:
      assert config.data[other] == base.data[other], other
  assert _get(name, f'runlocal,{key}={VALUES[key]}').data[key] == VALUES[key]


@pytest.mark.parametrize('name', BENCHMARKS)
def test_benchmark_model_and_runlocal(name):
  assert _get(name, 'model=FrameDiTG-XL/128-512/2').model.name == 'FrameDiTG-XL/128-512/2'
  small = _get(name, 'runlocal')
  assert small.train.num_steps == 2 and small.model.overrides.depth == 2


@pytest.mark.parametrize('name', NO_ARGUMENT)
def test_configs_without_arguments_reject_one(name):
  with pytest.raises(ValueError, match=f'configs/{name}.py takes no config argument'):
    _get(name, 'data_dir=/d')
  _get(name)  # and load without one


def test_demo_image_dit_takes_init_from():
  assert _get('demo_image_dit', 'init_from=/tmp/latte_from_dit').model.init_from == '/tmp/latte_from_dit'
  assert _get('demo_image_dit').model.init_from is None
  with pytest.raises(ValueError, match="unknown key '/tmp/x'; configs/demo_image_dit.py takes init_from"):
    _get('demo_image_dit', '/tmp/x')


def test_launch_script_prints_only_the_error_line(tmp_path):
  env = dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS='cpu')
  proc = subprocess.run([sys.executable, 'launch/train.py', '--config=configs/taichi256.py:data_dirr=/d',
                         f'--workdir={tmp_path}'], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 1
  lines = [l for l in proc.stderr.splitlines() if l.startswith('error:') or 'Traceback' in l]
  assert lines == ["error: --config=configs/taichi256.py:data_dirr=/d: unknown key 'data_dirr'; "
                   'configs/taichi256.py takes runlocal, model, data_dir, manual_dir, frame_interval, num_frames, '
                   'use_image_num.'], proc.stderr[-2000:]

"""Config validation: every invalid field is one ValueError line naming the field, before anything compiles.

Reference: the rule itself (field name in the message, the valid config passes); launch scripts print one
`error:` line and exit 1, without a traceback.
"""

import os
import subprocess
import sys

import pytest

import _train_utils as tu

sys.path.insert(0, tu.REPO)

# (dotted field, bad value, text the one-line error must contain)
CASES = [
    ('model.name', 'FrameDiTH-S/64-256/4-concatt', "did you mean 'FrameDiTH-S/64-256/4-concat'"),
    ('model.num_classes', -1, 'config.model.num_classes=-1'),
    ('model.class_dropout_prob', 1.5, 'config.model.class_dropout_prob'),
    ('model.dtype', 'float64', 'config.model.dtype'),
    ('model.attention_kernel', 'flash', 'config.model.attention_kernel'),
    ('model.remat_policy', 'everything', 'config.model.remat_policy'),
    ('diffusion.objective', 'flow', 'config.diffusion.objective'),
    ('diffusion.noise_schedule', 'cosin', 'config.diffusion.noise_schedule'),
    ('diffusion.predict', 'eps', 'config.diffusion.predict'),
    ('diffusion.diffusion_steps', 0, 'config.diffusion.diffusion_steps'),
    ('data.dataset', 'taichi', 'config.data.dataset'),
    ('data.num_frames', 0, 'config.data.num_frames=0'),
    ('data.frame_interval', 0, 'config.data.frame_interval'),
    ('data.image_size', -32, 'config.data.image_size'),
    ('data.use_image_num', -1, 'config.data.use_image_num'),
    ('data.global_batch_size', -8, 'config.data.global_batch_size'),
    ('data.global_batch_size', 0, 'config.data.global_batch_size'),
    ('data.prefetch', -1, 'config.data.prefetch'),
    ('data.num_parallel_calls', 0, 'config.data.num_parallel_calls'),
    ('data.temporal_mode', 'random', 'config.data.temporal_mode'),
    ('data.spatial_mode', 'crop', 'config.data.spatial_mode'),
    ('data.use_latents', True, 'config.data.latents_dir'),
    ('vae.name', 'sdxl', 'config.vae.name'),
    ('vae.dtype', 'int8', 'config.vae.dtype'),
    ('vae.scale_factor', 0.0, 'config.vae.scale_factor'),
    ('optim.lr', -1.0, 'config.optim.lr=-1.0'),
    ('optim.lr', 0.0, 'config.optim.lr=0.0'),
    ('optim.weight_decay', -0.1, 'config.optim.weight_decay'),
    ('optim.b2', 1.0, 'config.optim.b2'),
    ('optim.eps', 0.0, 'config.optim.eps'),
    ('optim.warmup_steps', -5, 'config.optim.warmup_steps'),
    ('optim.decay_steps', -1, 'config.optim.decay_steps'),
    ('optim.ema_decay', 1.5, 'config.optim.ema_decay'),
    ('optim.grad_accum_steps', 0, 'config.optim.grad_accum_steps'),
    ('optim.grad_accum_steps', 3, 'config.optim.grad_accum_steps=3'),  # 8 % 3 != 0
    ('train.num_steps', -1, 'config.train.num_steps=-1'),
    ('train.log_every', 0, 'config.train.log_every'),
    ('train.ckpt_every', -10, 'config.train.ckpt_every'),
    ('train.keep', 0, 'config.train.keep'),
    ('train.sample_every', -1, 'config.train.sample_every'),
    ('train.fvd_every', -1, 'config.train.fvd_every'),
    ('train.nan_policy', 'ignore', 'config.train.nan_policy'),
    ('sample.sampler', 'dpm', 'config.sample.sampler'),
    ('sample.num_steps', 0, 'config.sample.num_steps'),
    ('sample.batch_size', 0, 'config.sample.batch_size'),
    ('sample.num_samples', -2, 'config.sample.num_samples'),
    ('mesh.fsdp', 0, 'config.mesh.fsdp'),
    ('model.learn_sigma', 'flip', 'config.diffusion.learn_sigma'),  # must agree with diffusion.learn_sigma
]


def _config(path=None, value=None):
  config = tu.tiny_config('/unused', **{'data.global_batch_size': 8})
  if path:
    node = config
    *parents, leaf = path.split('.')
    for p in parents:
      node = node[p]
    if value == 'flip':  # the opposite of the config's own value
      value = not node[leaf]
    with config.unlocked():
      node[leaf] = value
  return config


SHIPPED = [('demo', None), ('motion_study', None), ('demo_image_dit', None), ('dpvae_diffusion_demo', None),
           ('dpvae_demo', None), ('taichi128', None), ('taichi128', 'runlocal'), ('taichi256', None),
           ('taichi256', 'runlocal'), ('sky256', None), ('ffs256', None), ('ucf101_256', None),
           ('ucf101_256', 'runlocal,use_image_num=2')]


@pytest.mark.parametrize('name,arg', SHIPPED, ids=[f'{n}:{a}' if a else n for n, a in SHIPPED])
def test_shipped_configs_pass_validation_unchanged(name, arg):
  """Every config the README and the benchmarks use validates (returns None, raises nothing) and validation
  does not rewrite a single field; the CASES above show the same validator rejecting one bad field."""
  import importlib  # pylint: disable=g-import-not-at-top
  from framedit_jax.train.validate import validate_config  # pylint: disable=g-import-not-at-top
  config = importlib.import_module(f'configs.{name}').get_config(arg)
  before = config.to_dict()
  assert validate_config(config) is None
  assert config.to_dict() == before
  assert validate_config(_config()) is None


def test_iddpm_sampler_steps_beyond_the_process_is_one_line_error():
  """DDPM/DDIM cannot take more steps than the process has (rectified flow's Euler can: the demo's case)."""
  from configs import demo  # pylint: disable=g-import-not-at-top
  from framedit_jax.train.validate import validate_config  # pylint: disable=g-import-not-at-top
  config = demo.with_iddpm(_config())
  assert validate_config(config) is None
  config.sample.num_steps = 5000
  with pytest.raises(ValueError) as err:
    validate_config(config)
  assert 'config.sample.num_steps=5000' in str(err.value) and '\n' not in str(err.value)


@pytest.mark.parametrize('path,value,expected', CASES, ids=[f'{p}={v}' for p, v, _ in CASES])
def test_invalid_field_one_line_error(path, value, expected):
  from framedit_jax.train.validate import validate_config
  with pytest.raises(ValueError) as err:
    validate_config(_config(path, value))
  msg = str(err.value)
  assert expected in msg and '\n' not in msg, msg


@pytest.mark.parametrize('arg,expected', [
    ('--config.data.num_framez=3', "config.data has no field 'num_framez'; did you mean config.data.num_frames"),
    ('--config.optm.lr=1', "config has no field 'optm'; did you mean config.optim"),
    ('--config.data.num_frames.x=1', 'config.data.num_frames is not a group of fields'),
])
def test_unknown_override_names_closest_field(arg, expected):
  from framedit_jax.train import cli
  assert expected in cli.unknown_override(_config(), ['prog', '--config=c.py', arg])
  assert cli.unknown_override(_config(), ['prog', '--config.data.num_frames=3']) is None


@pytest.mark.parametrize('arg,expected', [
    ('--config.data.num_framez=3', "config.data has no field 'num_framez'"),
    ('--config.model.name=Latte-XXL/2', "config.model.name='Latte-XXL/2' is not a registered model"),
    ('--config.data.num_frames=0', 'config.data.num_frames=0: must be an integer >= 1'),
])
def test_train_cli_prints_one_error_line(tmp_path, arg, expected):
  r = subprocess.run([sys.executable, os.path.join(tu.REPO, 'launch', 'train.py'),
                      '--config=' + os.path.join(tu.REPO, 'configs', 'demo.py'), f'--workdir={tmp_path}', arg],
                     env=tu.env(), capture_output=True, text=True, timeout=300, cwd=tu.REPO)
  assert r.returncode == 1, r.stderr[-2000:]
  errors = [line for line in r.stderr.splitlines() if line.startswith('error:')]
  assert len(errors) == 1 and expected in errors[0], r.stderr[-2000:]
  assert 'Traceback' not in r.stderr


def test_configs_built_on_the_demo_validate_and_keep_their_objective():
  """The demo trains with rectified flow; the image-DiT and DP-VAE demos built on it stay IDDPM with learned
  sigma (DiT checkpoints are epsilon / learned-sigma models with 2C output channels)."""
  from configs import demo, demo_image_dit, dpvae_diffusion_demo, motion_study
  from framedit_jax.train.validate import validate_config
  assert demo.get_config().diffusion.objective == 'rectified_flow'
  for config in (demo_image_dit.get_config(), dpvae_diffusion_demo.get_config()):
    validate_config(config)
    assert config.diffusion.objective == 'iddpm' and config.model.learn_sigma and config.diffusion.learn_sigma
  study = motion_study.get_config()
  validate_config(study)
  assert study.diffusion.objective == 'rectified_flow' and study.diffusion.rf_shift == 1.0 and study.optim.lr == 2e-3
  assert study.model.num_classes == 2 and study.data.dataset == 'moving_shapes/motion2'  # one class per motion split

"""Training parity replayed without the official code: a tiny FrameDiT-H run against the official train.py loop.

tests/fixtures/parity_training/framedit_h_tiny.npz was written by `tools/parity_training.py --tiny --designs
framedit_h --steps 12 --write-fixture` with the official code: the initial weights (official state_dict names),
every draw (batches, timesteps, noise, class drops), the official fp32 run's per-step losses, final params, EMA and
AdamW moments, and the tolerance the tool measured (10 x the largest of the official fp32-vs-fp64 error, our
1-ulp sensitivity and the equal-weight float floor). Here our step replays the draws from the converted weights;
it must agree, and each optimizer/EMA mutation of our side must be caught. A last test checks that the tool's
step is `framedit_jax.train.step.train_step` (same state after 3 steps, draws taken from train_step's own keys).
"""

import importlib.util
import os
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

HERE = os.path.dirname(__file__)
TOOLS = os.path.join(HERE, '..', 'tools')
sys.path.insert(0, TOOLS)
_spec = importlib.util.spec_from_file_location('parity_training', os.path.join(TOOLS, 'parity_training.py'))
pt = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pt)
ours = pt.ours

FIXTURE = os.path.join(HERE, 'fixtures', 'parity_training', 'framedit_h_tiny.npz')


@pytest.fixture(scope='module')
def replay():
  meta, init_sd, draws, official = pt.read_fixture(FIXTURE)
  design = dict(pt.DESIGNS[meta['design']], input_size=meta['tiny']['input_size'])
  module, overrides = pt.ours_class_model(design, None, meta['tiny'])
  conv = pt.Converter(design, init_sd, module, overrides, set(official['params']))
  ref = dict(losses=official['losses'], params=conv(official['params'], 'init'), ema=conv(official['ema'], 'init'),
             mu=conv(official['mu'], 'zeros'), nu=conv(official['nu'], 'zeros'))
  return meta, module, conv({}, 'init'), draws, ref


def _errors(replay, mutation):
  meta, module, init, draws, ref = replay
  r = ours.class_run(module, init, draws, meta['recipe'], mutation)
  run = dict(losses=r.losses, params=r.params, ema=r.ema, mu=r.mu, nu=r.nu)
  return pt.errors(run, ref, init), meta['tolerance']


def test_fixture_is_small_and_covers_the_clip_switch():
  assert os.path.getsize(FIXTURE) < 1_000_000
  meta, _, draws, official = pt.read_fixture(FIXTURE)
  assert 0 < meta['recipe']['start_clip_iter'] < meta['steps'] == len(official['losses']) == len(draws['t'])
  assert draws['drop'].any() and not draws['drop'].all()  # some class drops, not all


def test_ours_replays_the_official_run(replay):
  err, tol = _errors(replay, 'none')
  over = {q: (err[q], tol[q]) for q in pt.QUANTITIES if err[q] > tol[q]}
  assert not over, f'ours vs official beyond tolerance: {over}'


@pytest.mark.parametrize('mutation', [m for m in ours.MUTATIONS if m != 'none'])
def test_each_mutation_is_caught(replay, mutation):
  err, tol = _errors(replay, mutation)
  assert any(err[q] > tol[q] for q in pt.QUANTITIES), f'{mutation} not caught: {err} vs tolerance {tol}'


def test_tool_step_is_train_step(replay):
  """3 steps of `train_step` == 3 steps of the tool's step fed the draws train_step makes from its own keys."""
  from framedit_jax.diffusion import create_diffusion
  from framedit_jax.diffusion.objectives import sample_train_timesteps
  from framedit_jax.train.optimizer import make_optimizer
  from framedit_jax.train.state import create_train_state
  from framedit_jax.train.step import drop_labels, train_step
  meta, module, init, draws, _ = replay
  optim = ours.optim_config(dict(meta['recipe'], start_clip_iter=1))
  config = ml_collections.ConfigDict(dict(
      model=dict(num_classes=module.num_classes, class_dropout_prob=0.5),
      optim=optim, train=dict(nan_policy='halt')))
  optimizer = make_optimizer(optim)
  diffusion = create_diffusion('', learn_sigma=True)
  a = create_train_state(jax.tree.map(jnp.asarray, init), optimizer, jax.random.key_data(jax.random.key(3)))
  b = a
  step = ours.class_step(module, diffusion, optimizer, optim)
  for k in range(3):
    batch = dict(video=jnp.asarray(draws['x0'][k]), label=jnp.asarray(draws['y'][k]))
    k_t, k_noise, k_drop = jax.random.split(jax.random.fold_in(b.rng, b.step), 3)
    t = sample_train_timesteps(diffusion, k_t, batch['video'].shape[0])
    noise = jax.random.normal(k_noise, batch['video'].shape, jnp.float32)
    y = drop_labels(k_drop, batch['label'], module.num_classes, 0.5)
    a, _ = train_step(a, batch, model=module, diffusion=diffusion, optimizer=optimizer, config=config)
    b, _, _ = step(b, batch['video'], t, noise, y)
  for name in ('params', 'ema_params', 'opt_state'):
    for x, y in zip(jax.tree.leaves(getattr(a, name)), jax.tree.leaves(getattr(b, name))):
      np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-8, err_msg=name)  # XLA fuses the two jits differently

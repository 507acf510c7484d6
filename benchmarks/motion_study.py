r"""Motion study: does Matrix Attention capture large motion that Local Factorized attention misses?

  python benchmarks/motion_study.py                      # the full study, ~55 min on 2 CPU cores
  python benchmarks/motion_study.py --smoke              # a few steps of tiny models, < 3 min
  python benchmarks/motion_study.py --budget-minutes 20 --designs local,g --samples 16

One process, one command:
  1. builds the `moving_shapes` TFDS dataset if needed (shapes crossing the frame at 1-4 px/frame, bouncing);
  2. creates the four designs (Local Factorized = Latte, FrameDiT-G, FrameDiT-H concat, Full 3D) with the
     project's own `Experiment` (configs/motion_study.py: pixel space, width 128, depth 4, patch 4, 32x32,
     16 frames), compiles each train step ahead of time (compile time is recorded, not charged);
  3. trains them *interleaved*: rounds of `--chunk` steps per design in turn, on the same batches (one shared
     Grain iterator), each step timed to completion, so background load hits all designs alike. Two regimes are
     read off the same runs:
       - equal wall-clock: each design trains until its summed step time reaches the per-design budget W
         (`--train-minutes`, default `--train-fraction` x budget / designs); its EMA weights are snapshotted there;
       - equal steps: N = `--steps`, or by default the step count at which the first (slowest) design reaches W
         (designs run in lockstep until then), so every design is snapshotted after exactly N steps;
  4. samples `--samples` videos per design and regime from the EMA snapshots (DDIM-50 by default) and scores
     them against real clips of the test split (2 x samples clips: half A for the score, half B for the
     real-vs-real baseline at the same N):
       - FVD (I3D Kinetics-400 logits, StyleGAN-V protocol features; `framedit_jax.eval.fvd`),
       - FVMD (PIPs++ tracks; only with `--fvmd_weights`),
       - MFD, the tracker-free motion Fréchet distance, and mean speed etc. (`benchmarks/motion_stats.py`),
       - FCD, the per-frame content Fréchet distance (`benchmarks/frame_stats.py`; FID proper needs
         InceptionV3 weights that cannot be downloaded here);
  5. appends one JSON line per design x regime (hyperparameters, steps, times, losses, metrics, git commit,
     machine) after a header line to `--out`, writes a plot (`<out>.png`) and a strip of sample frames
     (`<out>_samples.png`), and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # pylint: disable=g-import-not-at-top,wrong-import-position
import motion_study_report as report  # pylint: disable=g-import-not-at-top,wrong-import-position
from motion_study_report import LABELS, REGIMES  # pylint: disable=g-import-not-at-top,wrong-import-position

DESIGNS = {
    'local': 'Latte-S/4',
    'g': 'FrameDiTG-S/64-256/4',
    'h_concat': 'FrameDiTH-S/64-256/4-concat',
    'full3d': 'DiT3D-S/4',
}
DEFAULT_OUT = os.path.join(ROOT, 'benchmarks', 'results', 'motion_study_cpu.jsonl')


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--designs', default='local,g,h_concat,full3d', help=f'comma list of {", ".join(DESIGNS)}')
  p.add_argument('--budget-minutes', type=float, default=55.0, help='total budget the training share is cut from')
  p.add_argument('--train-fraction', type=float, default=0.65,
                 help='share of the budget spent training (split equally between designs); the rest is '
                      'compile, sampling and scoring')
  p.add_argument('--train-minutes', type=float, default=None, help='per-design training budget W (overrides)')
  p.add_argument('--steps', type=int, default=None,
                 help='equal-steps N (default: steps of the slowest design in W)')
  p.add_argument('--chunk', type=int, default=5, help='steps per design per interleaved round')
  p.add_argument('--samples', type=int, default=32, help='generated videos per design and regime (and real clips '
                 'per half)')
  p.add_argument('--sampler', default=None, help="config.sample.sampler (default: the config's 'euler', the "
                 'rectified-flow sampler; see framedit_jax/diffusion/samplers.py)')
  p.add_argument('--sample-steps', type=int, default=50)
  p.add_argument('--batch-size', type=int, default=None, help='training batch (default: config, 8)')
  p.add_argument('--lr', type=float, default=None)
  p.add_argument('--seed', type=int, default=0)
  p.add_argument('--data-dir', default=None, help='TFDS data_dir (default: TFDS default)')
  p.add_argument('--dataset', default='moving_shapes/s32')
  p.add_argument('--fvmd_weights', default=None, help='PIPs++ pips2_weights.pth: also report FVMD')
  p.add_argument('--fvmd-resolution', type=int, default=256)
  p.add_argument('--out', default=DEFAULT_OUT, help='JSON lines (appended); the plot goes next to it')
  p.add_argument('--no-plot', action='store_true')
  p.add_argument('--smoke', action='store_true', help='tiny models, tiny dataset, a few steps (< 3 min)')
  return p.parse_args(argv)


def fvd_extractor():
  """The FVD feature extractor (a function so tests can swap it for a cheap one)."""
  from framedit_jax.eval.fvd import I3DFeatureExtractor  # pylint: disable=g-import-not-at-top
  return I3DFeatureExtractor(batch_size=8)


def machine_info() -> dict:
  import jax  # pylint: disable=g-import-not-at-top
  cpu = platform.processor()
  try:
    with open('/proc/cpuinfo') as f:
      cpu = next((l.split(':', 1)[1].strip() for l in f if l.startswith('model name')), cpu)
  except OSError:
    pass
  load = os.getloadavg() if hasattr(os, 'getloadavg') else None
  return {'cpu': cpu, 'cpu_count': os.cpu_count(), 'platform': platform.platform(), 'python': platform.python_version(),
          'jax': jax.__version__, 'backend': jax.default_backend(), 'loadavg_start': load}


def build_config(args, design: str):
  from configs import motion_study  # pylint: disable=g-import-not-at-top
  config = motion_study.get_config()
  config.seed = args.seed
  config.model.name = DESIGNS[design]
  config.data.dataset = args.dataset
  config.data.data_dir = args.data_dir
  if args.sampler:
    config.sample.sampler = args.sampler
  config.sample.num_steps = args.sample_steps
  if args.batch_size:
    config.data.global_batch_size = args.batch_size
  if args.lr:
    config.optim.lr = args.lr
  if args.smoke:
    config.model.overrides.hidden_size = 32
    config.model.overrides.depth = 1
    config.model.overrides.num_heads = 2
    config.data.global_batch_size = 2
  return config


class SharedBatches:
  """Host batches of one Grain iterator, kept until every design has consumed them (same data for all)."""

  def __init__(self, it):
    self.it, self.cache, self.next_step = it, {}, 0

  def get(self, step: int):
    while self.next_step <= step:
      self.cache[self.next_step] = next(self.it)
      self.next_step += 1
    return self.cache[step]

  def prune(self, min_step: int):
    for s in [s for s in self.cache if s < min_step]:
      del self.cache[s]


class Trainee:
  """One design: its Experiment, AOT-compiled train step, state, timings and EMA snapshots."""

  def __init__(self, design, config):
    import jax  # pylint: disable=g-import-not-at-top
    from framedit_jax.train import experiment as experiment_lib  # pylint: disable=g-import-not-at-top
    self.design, self.config = design, config
    self.exp = experiment_lib.Experiment(config)
    self.state, shardings = self.exp.create_state()
    self.params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(self.state.params))
    self.step_fn = self.exp.train_step(shardings)
    self.frozen = self.exp.frozen()  # None for this pixel-space task
    self.compiled = None
    self.compile_s = 0.0
    self.step, self.train_s, self.losses, self.step_times = 0, 0.0, [], []
    self.snapshots = {}

  def global_batch(self, host):
    from framedit_jax.parallel import mesh as mesh_lib  # pylint: disable=g-import-not-at-top
    return mesh_lib.host_to_global(self.exp.task.host_batch(host, self.step), self.exp.mesh)  # as train/loop.py

  def compile(self, host):
    import jax  # pylint: disable=g-import-not-at-top
    t0 = time.perf_counter()
    with jax.set_mesh(self.exp.mesh):
      self.compiled = self.step_fn.lower(self.state, self.global_batch(host), self.frozen).compile()
    self.compile_s = time.perf_counter() - t0

  def train_one(self, host) -> float:
    import jax  # pylint: disable=g-import-not-at-top
    with jax.set_mesh(self.exp.mesh):
      batch = self.global_batch(host)
      jax.block_until_ready(batch)
      t0 = time.perf_counter()
      self.state, metrics = self.compiled(self.state, batch, self.frozen)
      loss = float(metrics['loss'])  # blocks until the step is done
      dt = time.perf_counter() - t0
    if not np.isfinite(loss):
      raise FloatingPointError(f'{self.design}: non-finite loss at step {self.step + 1}.')
    self.step += 1
    self.train_s += dt
    self.losses.append(loss)
    self.step_times.append(dt)
    return dt

  def snapshot(self, regime: str):
    import jax  # pylint: disable=g-import-not-at-top
    self.snapshots[regime] = {'step': self.step, 'train_s': self.train_s,
                              'ema_params': jax.device_get(self.state.ema_params),
                              'loss_last': float(np.mean(self.losses[-20:])) if self.losses else None}


def train_interleaved(trainees, batches, budget_s: float, steps: int | None, chunk: int, log=print):
  """Trains all designs in rounds of `chunk` steps (see the module docstring); fills each `snapshots`."""
  n_target = steps
  last_log = time.perf_counter()

  def run(tr, max_steps):
    for _ in range(max_steps):
      tr.train_one(batches.get(tr.step))
      if 'time' not in tr.snapshots and tr.train_s >= budget_s:
        tr.snapshot('time')
      if n_target is not None and tr.step == n_target and 'steps' not in tr.snapshots:
        tr.snapshot('steps')

  # phase A: lockstep until the equal-steps snapshot is taken for every design
  while any('steps' not in t.snapshots for t in trainees):
    for tr in trainees:
      if 'steps' in tr.snapshots:
        continue
      k = chunk if n_target is None else min(chunk, n_target - tr.step)
      run(tr, k)
    if n_target is None and any(t.train_s >= budget_s for t in trainees):
      n_target = trainees[0].step  # all equal after a full lockstep round
      for tr in trainees:
        tr.snapshot('steps')
    batches.prune(min(t.step for t in trainees))
    if time.perf_counter() - last_log > 30:
      last_log = time.perf_counter()
      log('  ' + '  '.join(f'{t.design}: step {t.step} {t.train_s / 60:.1f}/{budget_s / 60:.1f} min '
                           f'loss {np.mean(t.losses[-chunk:]):.4f}' for t in trainees), flush=True)
  # phase B: every design continues alone (round-robin) until its own budget is spent
  while any('time' not in t.snapshots for t in trainees):
    for tr in trainees:
      if 'time' not in tr.snapshots:
        run(tr, chunk)
    batches.prune(min(t.step for t in trainees if 'time' not in t.snapshots) if any(
        'time' not in t.snapshots for t in trainees) else 10**12)
    if time.perf_counter() - last_log > 30:
      last_log = time.perf_counter()
      log('  ' + '  '.join(f'{t.design}: step {t.step} {t.train_s / 60:.1f}/{budget_s / 60:.1f} min'
                           for t in trainees), flush=True)
  return n_target


def real_clips(config, n: int, seed_offset: int = 7919) -> np.ndarray:
  """n real 16-frame clips of the test split in [-1, 1] (the pipeline's own clip recipe)."""
  from framedit_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  c = config.copy_and_resolve_references()
  with c.unlocked():
    c.seed = config.seed + seed_offset
    c.data.global_batch_size = 1
  it = pipeline.make_dataset(c, 'test')
  clips = [np.asarray(next(it)['video'])[0] for _ in range(n)]
  it.close()
  return np.stack(clips)


def ground_truth_speed(config) -> float:
  """Mean |velocity| (px/frame at width 32) over all shapes of the test split, from the stored ground truth."""
  from framedit_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  builder = pipeline.get_builder(config)
  src = builder.as_data_source('test')
  speeds = []
  for i in range(len(src)):
    ex = src[i]
    v = np.asarray(ex['velocities'])[0, :int(ex['num_shapes'])]
    speeds.extend(np.linalg.norm(v, axis=-1) * 32.0 / np.asarray(ex['video']).shape[2])
  return float(np.mean(speeds))


def main(argv=None):
  args = parse_args(argv)
  if args.smoke:
    args.dataset = 'moving_shapes/tiny' if args.dataset == parse_args([]).dataset else args.dataset
    args.samples = min(args.samples, 2)
    args.sample_steps = min(args.sample_steps, 3)
    args.chunk = min(args.chunk, 2)
    if args.train_minutes is None:
      args.train_minutes = 0.05
  designs = [d.strip() for d in args.designs.split(',') if d.strip()]
  for d in designs:
    if d not in DESIGNS:
      raise SystemExit(f'--designs: unknown design {d!r}; choose from {", ".join(DESIGNS)}.')
  t_start = time.perf_counter()
  budget_s = 60.0 * (args.train_minutes if args.train_minutes is not None
                     else args.train_fraction * args.budget_minutes / len(designs))
  import jax  # pylint: disable=g-import-not-at-top
  from framedit_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  from framedit_jax.train import generate as gen  # pylint: disable=g-import-not-at-top
  header = {'header': True, 'study': 'motion', 'git_commit': common.git_commit(dirty=True), 'machine': machine_info(),
            'args': vars(args), 'designs': {d: DESIGNS[d] for d in designs}, 'train_budget_s_per_design': budget_s,
            'time': time.strftime('%Y-%m-%dT%H:%M:%S')}
  print(f'motion study: designs {designs}, W = {budget_s / 60:.2f} min of step time per design, '
        f'{"N = " + str(args.steps) if args.steps else "N = steps of the slowest design in W"}', flush=True)

  configs = {d: build_config(args, d) for d in designs}
  base = configs[designs[0]]
  t0 = time.perf_counter()
  builder = pipeline.get_builder(base)
  print(f'dataset {args.dataset}: {dict((k, v.num_examples) for k, v in builder.info.splits.items())} '
        f'({time.perf_counter() - t0:.1f} s) in {builder.data_dir}', flush=True)

  batches = SharedBatches(pipeline.make_dataset(base, 'train'))
  trainees = []
  for d in designs:
    tr = Trainee(d, configs[d])
    tr.compile(batches.get(0))
    print(f'{d:9s} {configs[d].model.name}: {tr.params / 1e6:.2f}M params, compiled in {tr.compile_s:.1f} s',
          flush=True)
    trainees.append(tr)
  t0 = time.perf_counter()
  n_steps = train_interleaved(trainees, batches, budget_s, args.steps, args.chunk)
  train_wall = time.perf_counter() - t0
  batches.it.close()
  print(f'trained in {train_wall / 60:.1f} min wall; equal steps N = {n_steps}', flush=True)
  for tr in trainees:
    print(f'  {tr.design:9s} median step {np.median(tr.step_times) * 1e3:.0f} ms; steps: '
          + ', '.join(f'{r} {tr.snapshots[r]["step"]}' for r in REGIMES), flush=True)

  t0 = time.perf_counter()
  real = real_clips(base, 2 * args.samples)
  scorer = report.Scorer(real, fvd_extractor(), args.fvmd_weights, args.fvmd_resolution)
  baseline = scorer.baseline()
  gt_speed = ground_truth_speed(base)
  print(f'real clips scored in {time.perf_counter() - t0:.1f} s: {json.dumps({k: round(v, 3) for k, v in baseline.items()})}; '
        f'real mean speed (block matching) {scorer.motion_real["mean_speed"]:.2f}, ground truth {gt_speed:.2f} px/frame',
        flush=True)

  rows, strips = [], {'real': real[:2]}
  for tr in trainees:
    for regime in REGIMES:
      snap = tr.snapshots[regime]
      t0 = time.perf_counter()
      key = jax.random.PRNGKey(args.seed + 1)
      videos = np.concatenate([tr.exp.generate(snap['ema_params'], jax.random.fold_in(key, i), min(8, args.samples - i))
                               for i in range(0, args.samples, 8)])
      sample_s = time.perf_counter() - t0
      t0 = time.perf_counter()
      metrics = scorer.score(videos)
      score_s = time.perf_counter() - t0
      strips[f'{tr.design}/{regime}'] = videos[:2]
      times = np.asarray(tr.step_times[:snap['step']])
      row = {'design': tr.design, 'label': LABELS[tr.design], 'model': tr.config.model.name, 'regime': regime,
             'steps': snap['step'], 'train_s': snap['train_s'], 'budget_s': budget_s, 'equal_steps_n': n_steps,
             'median_step_s': float(np.median(times)), 'compile_s': tr.compile_s, 'params': tr.params,
             'loss_first20': float(np.mean(tr.losses[:20])), 'loss_last20': snap['loss_last'],
             'num_samples': len(videos), 'num_real_per_half': len(scorer.real_a),
             'sampler': gen.sampler_name(tr.config),
             'objective': tr.config.diffusion.objective, 'lr': tr.config.optim.lr, 'sample_s': sample_s, 'score_s': score_s,
             'real_mean_speed': scorer.motion_real['mean_speed'], 'gt_mean_speed': gt_speed,
             'real_moving_fraction': scorer.motion_real['moving_fraction'],
             'real_incoherent_fraction': scorer.motion_real['incoherent_fraction'],
             **baseline, **metrics,
             'hparams': {'hidden_size': tr.config.model.overrides.hidden_size, 'depth': tr.config.model.overrides.depth,
                         'num_heads': tr.config.model.overrides.num_heads, 'patch_size': 4,
                         'image_size': tr.config.data.image_size, 'num_frames': tr.config.data.num_frames,
                         'batch_size': tr.config.data.global_batch_size, 'lr': tr.config.optim.lr,
                         'ema_decay': tr.config.optim.ema_decay, 'dataset': args.dataset},
             'git_commit': header['git_commit']}
      rows.append(row)
      print(f'{tr.design:9s} {regime:5s} step {snap["step"]:5d}: FVD {metrics["fvd"]:8.1f}  MFD {metrics["mfd"]:7.3f}  '
            f'FCD {metrics["fcd"]:7.3f}  speed {metrics["mean_speed_samples"]:.2f}  '
            f'(sampled {sample_s:.0f} s, scored {score_s:.0f} s)', flush=True)

  header['total_s'] = time.perf_counter() - t_start
  header['loadavg_end'] = os.getloadavg() if hasattr(os, 'getloadavg') else None
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  with open(args.out, 'a') as f:
    for r in [header] + rows:
      f.write(json.dumps(r) + '\n')
  stem = os.path.splitext(args.out)[0]
  written = [args.out]
  if not args.no_plot:
    if report.plot(rows, baseline, scorer.motion_real, stem + '.png'):
      written.append(stem + '.png')
    strip = np.concatenate(list(strips.values()))
    gen.write_png(stem + '_samples.png', gen.frame_strip(strip))
    written.append(stem + '_samples.png')
  report.print_table(rows, baseline, scorer.motion_real, gt_speed)
  print(f'total {header["total_s"] / 60:.1f} min; wrote {", ".join(written)}', flush=True)
  return rows



if __name__ == '__main__':
  main()

r"""Motion study: does Matrix Attention model large motion better than Local Factorized attention?

  python benchmarks/motion_study.py                  # the study: 4 designs x 3 seeds at equal steps, ~60 min on 2 cores
  python benchmarks/motion_study.py --smoke          # tiny models, a few steps (< 2 min)
  python benchmarks/motion_study.py --designs h_concat --seeds 0 --lr 3e-3 --out /tmp/trial.jsonl   # one trial

One process, one command:
  1. builds the `moving_shapes/motion2` TFDS dataset if needed: one disc or square on a plain background, 16x16,
     label 0 = a small-motion clip (0.5-1 px/frame), label 1 = a large-motion clip (3-4 px/frame, bouncing);
  2. for each seed, creates the four designs (Local Factorized = Latte, FrameDiT-G, FrameDiT-H concat, Full 3D)
     with the project's own `Experiment` (configs/motion_study.py: class-conditional on the motion class, pixel
     space, width 128, depth 4, patch 4 (4x4 tokens per frame), 8-frame clips, rectified flow) and trains them *in lockstep* on the same
     batches (one Grain iterator per seed, rounds of `--chunk` steps per design) for exactly `--steps` steps:
     the comparison is at equal steps, so machine load changes the recorded step times, not the result;
  3. samples `--samples` videos per design and motion class from the EMA weights (Euler-50) and scores each class
     against real clips of that class from the test split (2 x samples clips: half A for the score, half B for
     the real-vs-real baseline at the same N; the same real clips for every seed):
       - MFD, the tracker-free motion Fréchet distance (`benchmarks/motion_stats.py`; 4-px blocks, search to
         5 px, speeds in px/frame of the 16-px frame), and the mean speed and incoherent fraction of the samples;
       - FCD, the per-frame content Fréchet distance (`benchmarks/frame_stats.py`);
       - FVD only with `--fvd` (I3D needs >= 9 frames: use with `--num-frames 16`);
  4. appends one JSON line per seed x design x motion class as it finishes (a header line first), then one
     summary line per design x class (mean and spread over seeds) and the pairwise verdicts; writes a plot
     (`<out>.png`) and a strip of sample frames (`<out>_samples.png`, seed 0), and prints the tables.

"Learned the motion" means MFD(samples, real) <= 2 x MFD(real, real) on that class. A pair of designs differs
"beyond the seed spread" when the difference of their mean MFDs exceeds the sum of their seed standard deviations
(and their seed ranges do not overlap); with 3 seeds that is a coarse test, and the report says so.
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
from motion_study_report import LABELS, MOTION_KWARGS, SPLITS  # pylint: disable=g-import-not-at-top,wrong-import-position

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
  p.add_argument('--seeds', default='0,1,2', help='comma list of seeds (model init, data order, sampling noise)')
  p.add_argument('--steps', type=int, default=None, help='training steps per design (default: the config)')
  p.add_argument('--eval-at', default='', help='comma list of earlier steps also scored (a learning curve; the '
                 'summary uses the final step only)')
  p.add_argument('--chunk', type=int, default=10, help='steps per design per lockstep round')
  p.add_argument('--samples', type=int, default=32, help='generated videos per design and motion class (and real '
                 'clips per half)')
  p.add_argument('--sampler', default=None, help="config.sample.sampler (default: the config's 'euler')")
  p.add_argument('--sample-steps', type=int, default=None)
  p.add_argument('--cfg-scale', default=None, help="config.sample.cfg_scale (default: the config's 1, unguided; > 1 "
                 'guides against the null class); a comma list also scores each further scale, in rows marked '
                 '"cfg_probe" that the summary leaves out')
  p.add_argument('--ema-decay', type=float, default=None, help='config.optim.ema_decay (default: the config)')
  p.add_argument('--batch-size', type=int, default=None, help='training batch (default: the config)')
  p.add_argument('--lr', type=float, default=None)
  p.add_argument('--num-frames', type=int, default=None, help='clip length (default: the config, 8)')
  p.add_argument('--hidden-size', type=int, default=None)
  p.add_argument('--cosine', action='store_true', help='cosine lr decay to 0 at the last step '
                 '(config.optim.decay_steps = the steps)')
  p.add_argument('--rf-shift', type=float, default=None, help='config.diffusion.rf_shift (SD3 time shift)')
  p.add_argument('--depth', type=int, default=None, help='blocks (Latte-style designs alternate spatial/temporal)')
  p.add_argument('--patch', type=int, default=4, help='patch size of every design (the names end in /<patch>)')
  p.add_argument('--data-dir', default=None, help='TFDS data_dir (default: TFDS default)')
  p.add_argument('--dataset', default=None, help='default: the config, moving_shapes/motion2')
  p.add_argument('--fvd', action='store_true', help='also FVD (I3D Kinetics-400); needs >= 9 frames')
  p.add_argument('--trial', default='', help='a free-text tag stored in every line (the trial log)')
  p.add_argument('--out', default=DEFAULT_OUT, help='JSON lines (appended); the plot goes next to it')
  p.add_argument('--no-plot', action='store_true')
  p.add_argument('--smoke', action='store_true', help='tiny models, tiny dataset, a few steps')
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


def model_name(design: str, patch: int) -> str:
  name = DESIGNS[design]
  head, _, tail = name.rpartition('/4')
  return f'{head}/{patch}{tail}'


def cfg_scales(args) -> list:
  """`--cfg-scale` as floats (`[None]` when unset: the config's)."""
  if args.cfg_scale is None or not str(args.cfg_scale).strip():
    return [None]
  try:
    return [float(c) for c in str(args.cfg_scale).split(',') if c.strip()]
  except ValueError:
    raise SystemExit(f'--cfg-scale: {args.cfg_scale!r} is not a comma list of numbers.') from None


def sample_class(tr, ema, key, n: int, k: int, cfg_scale: float) -> np.ndarray:
  """`n` videos of class `k` from `ema`, guided at `cfg_scale`, in batches of 16 (`VideoTask.generate`)."""
  import jax  # pylint: disable=g-import-not-at-top
  return np.concatenate([tr.exp.generate(ema, jax.random.fold_in(key, i), min(16, n - i),
                                         np.full((min(16, n - i),), k, np.int32), cfg_scale=cfg_scale)
                         for i in range(0, n, 16)])


def build_config(args, design: str, seed: int):
  from configs import motion_study  # pylint: disable=g-import-not-at-top
  config = motion_study.get_config()
  config.seed = seed
  config.model.name = model_name(design, args.patch)
  config.data.data_dir = args.data_dir
  for value, path in ((args.dataset, 'data.dataset'), (args.sampler, 'sample.sampler'),
                      (args.sample_steps, 'sample.num_steps'), (cfg_scales(args)[0], 'sample.cfg_scale'),
                      (args.ema_decay, 'optim.ema_decay'),
                      (args.batch_size, 'data.global_batch_size'),
                      (args.lr, 'optim.lr'), (args.num_frames, 'data.num_frames'), (args.steps, 'train.num_steps'),
                      (args.hidden_size, 'model.overrides.hidden_size'), (args.depth, 'model.overrides.depth'),
                      (args.rf_shift, 'diffusion.rf_shift')):
    if value is not None:
      group, key = path.split('.', 1)
      cfg = config[group]
      for k in key.split('.')[:-1]:
        cfg = cfg[k]
      cfg[key.split('.')[-1]] = value
  if args.cosine:
    config.optim.decay_steps = config.train.num_steps
  if args.smoke:
    config.model.overrides.hidden_size = 32
    config.model.overrides.depth = 1
    config.model.overrides.num_heads = 2
    config.data.global_batch_size = 2
    config.train.num_steps = min(config.train.num_steps, 4)
    config.sample.num_steps = min(config.sample.num_steps, 3)
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
  """One design at one seed: its Experiment, AOT-compiled train step, state and timings."""

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
    self.snapshots = {}  # step -> (EMA params on the host, summed step seconds)

  def snapshot(self):
    import jax  # pylint: disable=g-import-not-at-top
    self.snapshots[self.step] = (jax.device_get(self.state.ema_params), self.train_s)

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


def train_lockstep(trainees, batches, steps: int, chunk: int, eval_at=(), log=print):
  """Trains every design for exactly `steps` steps, in rounds of `chunk` steps each, on the same batches;
  snapshots the EMA params at each step of `eval_at` and at `steps`."""
  last_log = time.perf_counter()
  marks = sorted({int(s) for s in eval_at if 0 < int(s) < steps} | {steps})
  while any(t.step < steps for t in trainees):
    for tr in trainees:
      for _ in range(min(chunk, steps - tr.step)):
        tr.train_one(batches.get(tr.step))
        if tr.step in marks:
          tr.snapshot()
    batches.prune(min(t.step for t in trainees))
    if time.perf_counter() - last_log > 60:
      last_log = time.perf_counter()
      log('  ' + '  '.join(f'{t.design}: step {t.step}/{steps} loss {np.mean(t.losses[-chunk:]):.4f}'
                           for t in trainees), flush=True)


def real_clips_by_class(config, n: int, num_classes: int, seed: int = 7919):
  """{class: (n, T, H, W, 3)} real clips of the test split in [-1, 1] (the pipeline's own clip recipe)."""
  from framedit_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  c = config.copy_and_resolve_references()
  with c.unlocked():
    c.seed = seed
    c.data.global_batch_size = 1
  it = pipeline.make_dataset(c, 'test')
  out = {k: [] for k in range(num_classes)}
  for _ in range(50 * n * num_classes):
    if all(len(v) >= n for v in out.values()):
      break
    b = next(it)
    k = int(np.asarray(b['label'])[0])
    if len(out[k]) < n:
      out[k].append(np.asarray(b['video'])[0])
  it.close()
  short = {k: len(v) for k, v in out.items() if len(v) < n}
  if short:
    raise ValueError(f'--samples {n // 2}: the test split has too few clips of classes {short}; lower --samples.')
  return {k: np.stack(v) for k, v in out.items()}


def ground_truth_speeds(config) -> dict[int, float]:
  """`{label: mean |velocity|}` (px/frame of the clip) of the shapes of the test videos, in one pass."""
  from framedit_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  src = pipeline.get_builder(config).as_data_source('test')
  speeds: dict[int, list] = {}
  for i in range(len(src)):
    ex = src[i]
    v = np.asarray(ex['velocities'])[0, :int(ex['num_shapes'])]
    speeds.setdefault(int(ex['label']), []).extend(np.linalg.norm(v, axis=-1))
  return {k: float(np.mean(v)) for k, v in sorted(speeds.items())}


def main(argv=None):
  args = parse_args(argv)
  if args.smoke:
    args.dataset = args.dataset or 'moving_shapes/tiny2'
    args.samples = min(args.samples, 2)
    args.chunk = min(args.chunk, 2)
  designs = [d.strip() for d in args.designs.split(',') if d.strip()]
  for d in designs:
    if d not in DESIGNS:
      raise SystemExit(f'--designs: unknown design {d!r}; choose from {", ".join(DESIGNS)}.')
  seeds = [int(s) for s in args.seeds.split(',') if s.strip()]
  scales = cfg_scales(args)
  t_start = time.perf_counter()
  import jax  # pylint: disable=g-import-not-at-top
  from framedit_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  from framedit_jax.train import generate as gen  # pylint: disable=g-import-not-at-top
  base = build_config(args, designs[0], seeds[0])
  steps = int(base.train.num_steps)
  num_classes = int(base.model.num_classes)
  if num_classes != len(SPLITS):
    raise SystemExit(f'configs/motion_study.py: model.num_classes must be {len(SPLITS)} (one per motion split).')
  if args.fvd and base.data.num_frames < 9:
    raise SystemExit(f'--fvd: I3D needs >= 9 frames, the clips have {base.data.num_frames}; add --num-frames 16.')
  header = {'header': True, 'study': 'motion2', 'git_commit': common.git_commit(dirty=True),
            'machine': machine_info(), 'args': vars(args), 'designs': {d: DESIGNS[d] for d in designs},
            'seeds': seeds, 'steps': steps, 'trial': args.trial, 'time': time.strftime('%Y-%m-%dT%H:%M:%S')}
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  out_f = open(args.out, 'a')  # pylint: disable=consider-using-with
  write = lambda r: (out_f.write(json.dumps(r) + '\n'), out_f.flush())
  write(header)
  print(f'motion study: designs {designs}, seeds {seeds}, {steps} steps each', flush=True)

  t0 = time.perf_counter()
  builder = pipeline.get_builder(base)
  print(f'dataset {base.data.dataset}: {dict((k, v.num_examples) for k, v in builder.info.splits.items())} '
        f'({time.perf_counter() - t0:.1f} s) in {builder.data_dir}', flush=True)
  real = real_clips_by_class(base, 2 * args.samples, num_classes)
  scorers = {k: report.Scorer(real[k], fvd_extractor() if args.fvd else None, MOTION_KWARGS) for k in range(num_classes)}
  baselines = {k: scorers[k].baseline() for k in range(num_classes)}
  gt_speed = ground_truth_speeds(base)
  for k, split in enumerate(SPLITS):
    print(f'real {split:5s}: {json.dumps({n: round(v, 3) for n, v in baselines[k].items()})}; mean speed (block '
          f'matching) {scorers[k].motion_real["mean_speed"]:.2f}, ground truth {gt_speed[k]:.2f} px/frame', flush=True)

  rows, strips = [], {f'real/{s}': real[k][:1] for k, s in enumerate(SPLITS)}
  for seed in seeds:
    configs = {d: build_config(args, d, seed) for d in designs}
    batches = SharedBatches(pipeline.make_dataset(configs[designs[0]], 'train'))
    trainees = []
    for d in designs:
      tr = Trainee(d, configs[d])
      tr.compile(batches.get(0))
      print(f'seed {seed} {d:9s} {configs[d].model.name}: {tr.params / 1e6:.2f}M params, compiled in '
            f'{tr.compile_s:.1f} s', flush=True)
      trainees.append(tr)
    t0 = time.perf_counter()
    train_lockstep(trainees, batches, steps, args.chunk, [s for s in args.eval_at.split(',') if s.strip()])
    batches.it.close()
    print(f'seed {seed}: trained in {(time.perf_counter() - t0) / 60:.1f} min wall; median step ms: '
          + ', '.join(f'{t.design} {np.median(t.step_times) * 1e3:.0f}' for t in trainees), flush=True)
    for tr, (at, (ema, train_s)) in ((tr, snap) for tr in trainees for snap in sorted(tr.snapshots.items())):
      for (k, split), ci in ((ks, ci) for ks in enumerate(SPLITS) for ci in range(len(scales))):
        t0 = time.perf_counter()
        key = jax.random.fold_in(jax.random.PRNGKey(seed + 1), k)
        cfg_scale = float(tr.config.sample.cfg_scale) if ci == 0 else scales[ci]
        videos = sample_class(tr, ema, key, args.samples, k, cfg_scale)
        sample_s = time.perf_counter() - t0
        metrics = scorers[k].score(videos)
        if seed == seeds[0] and at == steps and ci == 0:
          strips[f'{tr.design}/{split}'] = videos[:1]
        row = {'design': tr.design, 'label': LABELS[tr.design], 'model': tr.config.model.name, 'seed': seed,
               'split': split, 'class': k, 'steps': at, 'final': at == steps and ci == 0,
               'cfg_scale': cfg_scale, 'cfg_probe': ci > 0, 'train_s': train_s,
               'median_step_s': float(np.median(tr.step_times)), 'compile_s': tr.compile_s, 'params': tr.params,
               'loss_first20': float(np.mean(tr.losses[:20])), 'loss_last100': float(np.mean(tr.losses[max(0, at - 100):at])),
               'num_samples': len(videos), 'num_real_per_half': len(scorers[k].real_a),
               'sampler': gen.sampler_name(tr.config), 'objective': tr.config.diffusion.objective,
               'lr': tr.config.optim.lr, 'sample_s': sample_s,
               'real_mean_speed': scorers[k].motion_real['mean_speed'], 'gt_mean_speed': gt_speed[k],
               'real_incoherent_fraction': scorers[k].motion_real['incoherent_fraction'],
               **baselines[k], **metrics, 'mfd_ratio': metrics['mfd'] / baselines[k]['mfd_real_vs_real'],
               'hparams': {'hidden_size': tr.config.model.overrides.hidden_size,
                           'depth': tr.config.model.overrides.depth, 'num_heads': tr.config.model.overrides.num_heads,
                           'image_size': tr.config.data.image_size, 'num_frames': tr.config.data.num_frames,
                           'batch_size': tr.config.data.global_batch_size, 'lr': tr.config.optim.lr,
                           'ema_decay': tr.config.optim.ema_decay, 'rf_shift': tr.config.diffusion.rf_shift,
                           'dataset': tr.config.data.dataset},
               'trial': args.trial, 'git_commit': header['git_commit']}
        rows.append(row)
        write(row)
        print(f'seed {seed} {tr.design:9s} step {at:5d} {split:5s} cfg {cfg_scale:g}: MFD {metrics["mfd"]:7.3f} ({row["mfd_ratio"]:.2f}x real vs '
              f'real)  FCD {metrics["fcd"]:7.3f}  speed {metrics["mean_speed_samples"]:.2f}  incoherent '
              f'{metrics["incoherent_fraction_samples"]:.2f}  (sampled {sample_s:.0f} s)', flush=True)

  summary = report.summarize([r for r in rows if r['final']])
  for r in summary:
    write(r)
  header_end = {'footer': True, 'total_s': time.perf_counter() - t_start,
                'loadavg_end': os.getloadavg() if hasattr(os, 'getloadavg') else None}
  write(header_end)
  out_f.close()
  stem = os.path.splitext(args.out)[0]
  written = [args.out]
  if not args.no_plot:
    if report.plot(summary, baselines, stem + '.png'):
      written.append(stem + '.png')
    gen.write_png(stem + '_samples.png', gen.frame_strip(np.concatenate(list(strips.values()))))
    written.append(stem + '_samples.png')
    print('sample strip rows: ' + ', '.join(strips), flush=True)
  report.print_tables(summary, [r for r in rows if r['final']])
  print(f'total {header_end["total_s"] / 60:.1f} min; wrote {", ".join(written)}', flush=True)
  return rows, summary


if __name__ == '__main__':
  main()

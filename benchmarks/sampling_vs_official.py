"""Sampling side by side: the official `sample.py` loop against ours, same weights and same noise; plus ours with
DPM-Solver++(2M), and its FVD against DDPM-250 on the demo model.

    python benchmarks/sampling_vs_official.py --official-src /path/to/FrameDiT --designs local --depth 12 \
        --frames 16 --latent 16 --batches 1,4 --samplers ddpm250,ddim50,dpmpp20 --threads 2 \
        --out benchmarks/results/sampling_vs_official_cpu.jsonl
    python benchmarks/sampling_vs_official.py --demo-workdir /tmp/demo_iddpm --fvd-num 8 \
        --out benchmarks/results/sampling_vs_official_cpu.jsonl

Part 1 (`--official-src`), per design, batch and sampler, one JSON line (`part: 'time'`):
  official  the loop of the official `sample.py`: `diffusion.p_sample_loop` / `ddim_sample_loop(model.forward,
            z.shape, z, clip_denoised=False, model_kwargs=dict(y=None), progress=False)` from
            `<official-src>/diffusion`, the official model (`<official-src>/models`, imported at run time as
            benchmarks/vs_official.py does) in eval mode under `torch.no_grad()`, fp32, `--threads` torch threads.
  ours      the jitted `lax.scan` sampler `launch/sample.py` runs (`train.generate.Sampler` on the sampler registry,
            `Experiment.generate` without the [-1, 1] clip of decoded videos),
            model from `train.experiment.build_model` with the config's 'auto' settings; compiled ahead of time
            (`ours_compile_s`), then timed.
  Both models hold the same weights (vs_official.build_official's random tensors, converted with
  `convert.official.convert_state_dict`) and start from the same x_K. For DDPM the official per-step
  `th.randn_like` draws are replaced, for the timed call, by ours' own per-step noise (normal(fold_in(key_steps,
  i)), `diffusion/sampling.py`), so both compute the same sample: `max_abs_diff` of the two outputs. DDIM runs
  with eta = 0. Official `sample.py` passes `str(N)` as the respacing for both samplers, which for DDIM-50 picks
  the rounded steps (0, 20, 41, ..., 999) where ours' 'ddim50' takes the stride (0, 20, ..., 980); the cost per
  step is the same, so the official DDIM loop here runs on ours' spacing (`official_respacing` is recorded).
  `video_s` = wall time of one call / B (the official model gets one untimed warm-up forward first); `ours_video_s_with_compile` adds the compile time, / B.
  `dpmpp<N>` (ours only, the registry's 'dpmpp_2m', N model calls) is timed the same way.

Part 2 (`--demo-workdir`, a run of configs/demo.py trained with `demo.with_iddpm`'s settings, see
benchmarks/cpu_issue29.sh), one line (`part: 'fvd'`): `--fvd-num` samples with DDPM-250 and with DPM-Solver++(2M)-20
(`Experiment.generate`, key PRNGKey(seed) for both), their FVD against the same real clips, FVD(real, real)
of two disjoint real sets (the baseline; `eval.evaluate.evaluate_with_baseline`), FVD(DPM, DDPM), and each
sampler's time per video (compile included, and excluded).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import re
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import common  # pylint: disable=g-import-not-at-top,wrong-import-position
import vs_official  # pylint: disable=g-import-not-at-top,wrong-import-position

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import jax.numpy as jnp  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

REGISTRY_NAME = {'ddpm': 'ddpm', 'ddim': 'ddim', 'dpmpp': 'dpmpp_2m'}  # -> config.sample.sampler


def parse_sampler(text: str) -> tuple[str, int]:
  """'ddpm250' -> ('ddpm', 250); kinds ddpm, ddim, dpmpp. Raises ValueError for anything else."""
  m = re.fullmatch(r'(ddpm|ddim|dpmpp)(\d+)', text.strip())
  if not m or int(m.group(2)) < 1:
    raise ValueError(f'--samplers: expected ddpmN, ddimN or dpmppN (N >= 1), got {text!r}.')
  return m.group(1), int(m.group(2))


def step_noise(key: jax.Array, shape: tuple[int, ...], num_steps: int) -> tuple[np.ndarray, list[np.ndarray]]:
  """ours' x_K and per-step noises for `key` (diffusion/sampling.py): x_K = normal(key_init); the step at respaced
  index i draws normal(fold_in(key_steps, i)). Returns (x_K, [noise for i = K-1, ..., 0]) as float32 numpy."""
  key_init, key_steps = jax.random.split(key)
  x_k = np.asarray(jax.random.normal(key_init, shape, jnp.float32))
  noises = [np.asarray(jax.random.normal(jax.random.fold_in(key_steps, i), shape, jnp.float32))
            for i in range(num_steps - 1, -1, -1)]
  return x_k, noises


class _NoiseQueue:
  """Stands in for `torch` inside the official gaussian_diffusion module: `randn_like` returns the given noises in
  order (official (B, F, C, H, W) layout); every other attribute is torch's."""

  def __init__(self, torch, noises):
    self._torch = torch
    self._noises = list(noises)

  def __getattr__(self, name):
    return getattr(self._torch, name)

  def randn_like(self, x, **_):
    if not self._noises:
      raise RuntimeError('sampling_vs_official: the official loop drew more noises than it has steps.')
    n = self._noises.pop(0)
    if tuple(n.shape) != tuple(x.shape):
      raise RuntimeError(f'sampling_vs_official: noise {tuple(n.shape)} for x {tuple(x.shape)}.')
    return n


def _to_official(a: np.ndarray) -> np.ndarray:
  return np.ascontiguousarray(np.transpose(a, (0, 1, 4, 2, 3)))  # (B, T, H, W, C) -> (B, T, C, H, W)


def _respacing(kind: str, steps: int) -> str:
  return f'ddim{steps}' if kind == 'ddim' else str(steps)  # ours' respacing (diffusion/samplers.py)


def run_official(src: str, model, kind: str, steps: int, x_k: np.ndarray, noises: list[np.ndarray] | None):
  """The official sample.py loop on `x_k` (B, T, H, W, C); returns (x_0 (B, T, H, W, C), wall s)."""
  import torch  # pylint: disable=g-import-not-at-top
  off = vs_official.load_official_diffusion(src)
  diffusion = off.create_diffusion(timestep_respacing=_respacing(kind, steps))
  gd = sys.modules['official_diffusion.gaussian_diffusion']
  z = torch.from_numpy(_to_official(x_k))
  loop = diffusion.ddim_sample_loop if kind == 'ddim' else diffusion.p_sample_loop
  with torch.no_grad():  # one warm-up forward (torch's first call allocates), not timed
    model.forward(z, torch.full((z.shape[0],), diffusion.timestep_map[-1], dtype=torch.int64), y=None)
  if noises is not None:
    gd.th = _NoiseQueue(torch, [torch.from_numpy(_to_official(n)) for n in noises])
  try:
    with torch.no_grad():
      t0 = time.perf_counter()
      out = loop(model.forward, z.shape, z, clip_denoised=False, model_kwargs=dict(y=None), progress=False,
                 device='cpu')
      wall = time.perf_counter() - t0
  finally:
    gd.th = torch
  return np.transpose(out.numpy(), (0, 1, 3, 4, 2)), wall


def ours_sampler(model, config, kind: str, steps: int, shape: tuple[int, ...]):
  """ours' jitted sampler `fn(params, key) -> x_0`: the registry sampler `Experiment.generate` runs
  (`train.generate.Sampler` with `config.sample.sampler` = ddpm / ddim / dpmpp_2m), unconditional, unguided."""
  from framedit_jax.train import generate as gen  # pylint: disable=g-import-not-at-top
  config = config.copy_and_resolve_references()
  config.sample.sampler, config.sample.num_steps = REGISTRY_NAME[kind], steps
  run = gen.Sampler(gen.class_apply_fn(model), config, eps_channels=shape[-1]).compiled(shape, False)
  return lambda p, key: run(p, key, None, None, jnp.float32(1.0))


def build_models(src: str, design: str, *, frames: int, latent: int, depth: int | None, overrides=()):
  """(config, our model, our params, official model in eval mode): same weights, as vs_official.build_pair."""
  from framedit_jax.convert.official import convert_state_dict  # pylint: disable=g-import-not-at-top
  from framedit_jax.train import experiment  # pylint: disable=g-import-not-at-top
  config = vs_official.ours_config(design, frames, latent, 1, depth, overrides)
  config.sample.clip_denoised = False  # official sample.py: clip_denoised=False
  model = experiment.build_model(config, 4, latent)
  official, sd = vs_official.build_official(src, design, model)
  params = convert_state_dict(sd, config.model.name, input_size=latent, num_frames=frames, num_classes=0,
                              **dict(config.model.overrides))
  return config, model, jax.tree.map(jnp.asarray, params), official.eval()


def time_design(args, design: str) -> list[dict[str, Any]]:
  config, model, params, official = build_models(args.official_src, design, frames=args.frames, latent=args.latent,
                                                 depth=args.depth, overrides=args.ours_override)
  records = []
  for batch in args.batches:
    shape = (batch, args.frames, args.latent, args.latent, 4)
    key = jax.random.PRNGKey(args.seed)
    for kind, steps in args.samplers:
      fn = ours_sampler(model, config, kind, steps, shape)
      t0 = time.perf_counter()
      compiled = jax.jit(fn).lower(params, key).compile()
      compile_s = time.perf_counter() - t0
      t0 = time.perf_counter()
      ours = np.asarray(jax.block_until_ready(compiled(params, key)))
      ours_s = time.perf_counter() - t0
      rec = {'bench': 'sampling_vs_official', 'part': 'time', 'design': design, 'ours_model': config.model.name,
             'depth': model.depth, 'hidden_size': model.hidden_size, 'num_frames': args.frames,
             'latent_size': args.latent, 'batch': batch, 'sampler': f'{kind}{steps}', 'steps': steps,
             'ours_settings': {k: getattr(model, k) for k in ('scan_blocks', 'remat_policy', 'cpu_kernels')},
             'ours_compile_s': round(compile_s, 3), 'ours_call_s': round(ours_s, 4),
             'ours_video_s': round(ours_s / batch, 4),
             'ours_video_s_with_compile': round((ours_s + compile_s) / batch, 4), 'ours_max_abs': float(
                 np.abs(ours).max())}
      if kind != 'dpmpp':
        x_k, noises = step_noise(key, shape, steps)
        ref, off_s = run_official(args.official_src, official, kind, steps, x_k, noises if kind == 'ddpm' else None)
        rec.update({'official_respacing': _respacing(kind, steps), 'official_call_s': round(off_s, 4),
                    'official_video_s': round(off_s / batch, 4),
                    'ratio': float(f'{ours_s / off_s:.4g}'),
                    'ratio_with_compile': float(f'{(ours_s + compile_s) / off_s:.4g}'),
                    'max_abs_diff': float(np.abs(ours - ref).max()), 'official_max_abs': float(np.abs(ref).max())})
        rec['rel_diff'] = float(f"{rec['max_abs_diff'] / max(rec['official_max_abs'], 1e-12):.3g}")
      common.emit(rec, args.out)
      records.append(rec)
      del compiled
      gc.collect()
  return records


def demo_fvd(args) -> dict[str, Any]:
  """Part 2: DDPM-250 vs DPM-Solver++(2M)-20 on the trained demo model (see the module docstring)."""
  from configs import demo  # pylint: disable=g-import-not-at-top
  from framedit_jax.eval import evaluate, fvd  # pylint: disable=g-import-not-at-top
  from framedit_jax.train import experiment  # pylint: disable=g-import-not-at-top
  config = demo.with_iddpm(demo.get_config())
  config.sample.sampler, config.sample.num_steps = 'ddpm', args.fvd_ddpm_steps
  exp = experiment.Experiment(config)
  params = exp.load_params(args.demo_workdir)
  n, frames = args.fvd_num, int(config.data.num_frames)
  key = jax.random.PRNGKey(args.seed)
  times = {}
  t0 = time.perf_counter()
  ddpm = exp.generate(params, key, n)  # the public path (launch/sample.py): compile + one call
  times['ddpm_with_compile_s'] = time.perf_counter() - t0
  t0 = time.perf_counter()
  ddpm = exp.generate(params, key, n)
  times['ddpm_s'] = time.perf_counter() - t0
  config_dpm = config.copy_and_resolve_references()
  config_dpm.sample.sampler, config_dpm.sample.num_steps = 'dpmpp_2m', args.fvd_dpm_steps
  exp_dpm = experiment.Experiment(config_dpm)
  t0 = time.perf_counter()
  dpm = exp_dpm.generate(params, key, n)
  times['dpmpp_with_compile_s'] = time.perf_counter() - t0
  t0 = time.perf_counter()
  dpm = exp_dpm.generate(params, key, n)
  times['dpmpp_s'] = time.perf_counter() - t0
  real = list(itertools.islice(evaluate.clips_from_batches(experiment.make_dataset(config, config.data.split),
                                                            frames), 2 * n))
  extractor = fvd.I3DFeatureExtractor(batch_size=8)
  res_ddpm = evaluate.evaluate_with_baseline(list(ddpm), real, extractor, num_videos=n, num_frames=frames)
  res_dpm = evaluate.evaluate_with_baseline(list(dpm), real, extractor, num_videos=n, num_frames=frames)
  rec = {'bench': 'sampling_vs_official', 'part': 'fvd', 'config': 'configs/demo.py + demo.with_iddpm',
         'demo_workdir': os.path.abspath(args.demo_workdir), 'num_videos': res_ddpm['num_videos'],
         'num_frames': frames, 'seed': args.seed, 'ddpm_steps': args.fvd_ddpm_steps,
         'dpmpp_steps': args.fvd_dpm_steps,
         'fvd_ddpm': res_ddpm['fvd'], 'fvd_dpmpp': res_dpm['fvd'], 'fvd_real_vs_real': res_ddpm['fvd_real_vs_real'],
         'fvd_dpmpp_vs_ddpm': fvd.fvd_from_arrays(ddpm, dpm, extractor),
         'ratio_ddpm': res_ddpm['fvd'] / res_ddpm['fvd_real_vs_real'],
         'ratio_dpmpp': res_dpm['fvd'] / res_dpm['fvd_real_vs_real']}
  rec.update({k.replace('_s', '_video_s'): round(v / n, 4) for k, v in times.items()})
  common.emit(rec, args.out)
  return rec


def table(records: list[dict[str, Any]]) -> list[str]:
  lines = ['# sampling, seconds per video (ours compile excluded; +c = included); ratio = ours / official',
           f'# {"design":<8} {"B":>2} {"sampler":<9} {"ours":>8} {"ours+c":>8} {"official":>9} {"ratio":>6} '
           f'{"ratio+c":>7} {"max|diff|":>9}']
  for r in records:
    if r['part'] == 'fvd':
      lines.append(f'# demo N={r["num_videos"]}: FVD ddpm{r["ddpm_steps"]} {r["fvd_ddpm"]:.1f}, dpmpp{r["dpmpp_steps"]} '
                   f'{r["fvd_dpmpp"]:.1f}, real-vs-real {r["fvd_real_vs_real"]:.1f}, dpmpp vs ddpm '
                   f'{r["fvd_dpmpp_vs_ddpm"]:.1f}; s/video {r["ddpm_video_s"]:.3f} vs {r["dpmpp_video_s"]:.3f}')
      continue
    lines.append(f'# {r["design"]:<8} {r["batch"]:>2} {r["sampler"]:<9} {r["ours_video_s"]:>8.3f} '
                 f'{r["ours_video_s_with_compile"]:>8.3f} {r.get("official_video_s", float("nan")):>9.3f} '
                 f'{r.get("ratio", float("nan")):>6.3g} {r.get("ratio_with_compile", float("nan")):>7.3g} '
                 f'{r.get("max_abs_diff", float("nan")):>9.1e}')
  return lines


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument('--official-src', help='root of the official FrameDiT checkout (part 1)')
  p.add_argument('--designs', default='local', help=f'comma list of {",".join(vs_official.OFFICIAL_CASE)}')
  p.add_argument('--frames', type=int, default=16)
  p.add_argument('--depth', type=int, default=12, help='blocks (S default 12)')
  p.add_argument('--latent', type=int, default=16, help='latent H=W')
  p.add_argument('--batches', default='1,4', help='comma list of B')
  p.add_argument('--samplers', default='ddpm250,ddim50,dpmpp20', help='comma list of ddpmN, ddimN, dpmppN')
  p.add_argument('--threads', type=int, default=2, help='torch threads and CPUs this process is pinned to')
  p.add_argument('--seed', type=int, default=0)
  p.add_argument('--ours-override', action='append', default=[], metavar='KEY=VALUE',
                 help='as benchmarks/vs_official.py (e.g. depth-independent implementation options)')
  p.add_argument('--demo-workdir', help='part 2: a demo run trained with demo.with_iddpm settings')
  p.add_argument('--fvd-num', type=int, default=8, help='part 2: N samples per sampler (and 2N real clips)')
  p.add_argument('--fvd-ddpm-steps', type=int, default=250)
  p.add_argument('--fvd-dpm-steps', type=int, default=20)
  p.add_argument('--out', help='append JSON lines here')
  args = p.parse_args(argv)
  if not args.official_src and not args.demo_workdir:
    p.error('give --official-src (part 1), --demo-workdir (part 2), or both')
  if args.official_src and not os.path.isdir(os.path.join(args.official_src, 'models')):
    p.error(f'--official-src: {args.official_src}/models not found; pass the FrameDiT checkout root')
  try:
    args.samplers = [parse_sampler(s) for s in common.parse_list(args.samplers)]
    args.ours_override = [vs_official.parse_override(o) for o in args.ours_override]
  except ValueError as e:
    p.error(str(e))
  args.designs = common.parse_list(args.designs)
  for d in args.designs:
    if d not in vs_official.OFFICIAL_CASE:
      p.error(f'--designs: unknown design {d!r}; choose from {", ".join(vs_official.OFFICIAL_CASE)}')
  args.batches = common.parse_list(args.batches, int)
  if min(args.batches) < 1 or args.fvd_num < 2:
    p.error('--batches must be >= 1 and --fvd-num >= 2')
  return args


def main(argv=None, pin_threads: bool = True) -> list[dict[str, Any]]:
  import torch  # pylint: disable=g-import-not-at-top
  args = parse_args(argv)
  cpus = vs_official.set_threads(args.threads) if pin_threads else sorted(os.sched_getaffinity(0))
  common.emit({'bench': 'sampling_vs_official', 'header': True, **common.machine_info(), 'torch': torch.__version__,
               'torch_threads': torch.get_num_threads(), 'cpus': cpus, 'threads': args.threads,
               'official_src': os.path.abspath(args.official_src) if args.official_src else None,
               'ld_preload': os.environ.get('LD_PRELOAD', '')}, args.out)
  records = []
  if args.official_src:
    for design in args.designs:
      records += time_design(args, design)
  if args.demo_workdir:
    records.append(demo_fvd(args))
  print('\n'.join(table(records)), flush=True)
  return records


if __name__ == '__main__':
  main()

"""Train-step and forward time of framedit_jax against the official FrameDiT PyTorch code, same model, same cores.

    python benchmarks/vs_official.py --official-src /work/ref/FrameDiT \
        --designs local,g,h_concat,h_gated,full3d --frames 16 --depth 12 --batch 2 --latent 16 --threads 2 \
        --rounds 3 --out benchmarks/results/vs_official_cpu.jsonl [--ours-override scan_blocks=True ...]

For each design it builds, on one config (S width: hidden 384, 6 heads; `--depth` blocks; patch 2; fp32;
unconditional; learn_sigma; B x F x latent^2 x 4 latents):

  ours      the training loop's own pieces, as benchmarks/step_time.py `Built` uses them (configs/default.py with
            vae.name='identity', `train.experiment.build_model / init_state / training_diffusion`,
            `train.optimizer.make_optimizer`, `train.step.make_train_step`): IDDPM hybrid loss (MSE + VB),
            global-norm clip 0.1, AdamW (lr 1e-4, wd 0), EMA 0.9999. `optim.start_clip_iter` is set to 0 so the
            clip is active from the first step.
  official  `<official-src>/models/<file>.py` (imported at run time, never copied; `timm` replaced by the minimal
            stand-in of tools/parity_official.py), `diffusion.create_diffusion(timestep_respacing="")` and
            `training_losses` from `<official-src>/diffusion`, and the step of the official train.py: NaN check,
            backward, `clip_grad_norm_(params, 0.1)` (clipping from step 0 here), `torch.optim.AdamW(lr=1e-4,
            weight_decay=0)`, `zero_grad`, EMA `lerp_` loop (official utils.update_ema, decay 0.9999).
            Attention mode is the official default ('math').

The official model is built from our resolved architecture (depth, hidden_size, num_heads, mlp_ratio, qk_col_dim,
v_col_dim, num_col_heads, u_type, fuse_mode), so an architecture `--ours-override` (e.g. hidden_size=32) changes
both sides; implementation overrides (remat, scan_blocks, remat_policy, cpu_kernels, attention_kernel) only exist in
ours. Without them ours runs the config's 'auto' settings (framedit_jax/models/cpu/defaults.py), recorded per line
as `ours_settings`.
Both start from the same weights: the official trainable tensors are filled with the random values of
tools/parity_official.py and converted into ours with `framedit_jax.convert.official.convert_state_dict`; the
forward outputs on one (x_t, t) are compared (`fwd_max_abs_diff`) so the two timed models are the same model.

Timing: after compiling ours and `--warmup` untimed rounds (default 1: one call of every timed function on both
sides; under glibc malloc our step takes ~4 steps to reach its steady time, so issue 29's runs use 4), `--rounds` rounds each
call ours step, official step, ours forward, official forward once, in that order (load from other processes
hits both alike); medians are reported. Forward = jitted `model.apply` (ours) and the module under
`torch.no_grad()` (official), both at t=500.

Threads: `--threads N` calls `torch.set_num_threads(N)` and pins the process to N of its allowed CPUs with
`os.sched_setaffinity` before JAX starts its CPU client; XLA sizes its CPU thread pools from the schedulable CPUs.
XLA has no thread-count flag (`XLA_FLAGS=--intra_op_parallelism_threads=N` aborts with "Unknown flag in
XLA_FLAGS"; `--xla_cpu_multi_thread_eigen` exists but only switches multi-threaded Eigen on/off, it is on by
default), so the affinity mask is what sets JAX's cores.

Output: a header JSON line (machine, date, commit, torch/jax versions, settings), one JSON line per design
(`design`, `ours_step_s`, `official_step_s`, `ratio` = ours/official, `ours_fwd_s`, `official_fwd_s`, ...),
appended to `--out` if given, then a table (lines starting with '#').
"""

from __future__ import annotations

import argparse
import ast
import copy
import dataclasses
import gc
import importlib.util
import os
import resource
import sys
import time
import types
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'tools'))
import common  # pylint: disable=g-import-not-at-top,wrong-import-position
import parity_official  # pylint: disable=g-import-not-at-top,wrong-import-position

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import jax.numpy as jnp  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

# design -> parity_official CASES entry (official file, class, fixed official kwargs).
OFFICIAL_CASE = {'local': 'latte', 'g': 'framedit_g', 'h_concat': 'framedit_h_concat',
                 'h_gated': 'framedit_h_gated', 'full3d': 'dit3d'}
MODEL_SIZE, RANK, PATCH = 'S', '64-256', 2
EMA_DECAY = 0.9999
FWD_T = 500
_MATRIX_KEYS = ('qk_col_dim', 'v_col_dim', 'num_col_heads', 'u_type')
_NOT_FOR = {'local': _MATRIX_KEYS + ('fuse_mode',), 'full3d': _MATRIX_KEYS + ('fuse_mode',), 'g': ('fuse_mode',)}


# ------------------------------------------------------------------------------------------------ ours


def parse_override(text: str) -> tuple[str, Any]:
  """'key=value' -> (key, value); the value is a Python literal (True, 2, 0.5, 'x') or else the raw string.

  Raises:
    ValueError: no '=' or an empty key.
  """
  key, sep, value = text.partition('=')
  if not sep or not key.strip():
    raise ValueError(f'--ours-override: expected key=value (e.g. scan_blocks=True), got {text!r}.')
  try:
    parsed = ast.literal_eval(value)
  except (ValueError, SyntaxError):
    parsed = value
  return key.strip(), parsed


def ours_config(design: str, frames: int, latent: int, batch: int, depth: int | None,
                ours_overrides: list[tuple[str, Any]] = ()):
  """configs/default.py as step_time.make_config sets it (fp32, unconditional, identity VAE), clip from step 0.

  `ours_overrides`: (key, value) pairs; a key that is a `config.model` field (remat, dtype, attention_kernel, ...)
  sets that field, any other key goes to `config.model.overrides` (a `get_model` kwarg: scan_blocks,
  remat_policy, hidden_size, ...). Matrix Attention keys are dropped for local/full3d, fuse_mode for g.
  """
  import step_time  # pylint: disable=g-import-not-at-top
  args = types.SimpleNamespace(dtype='float32', remat=False, attention_kernel='einsum', batch=batch)
  overrides = {} if depth is None else {'depth': depth}
  case = step_time.Case(design, common.model_name(design, MODEL_SIZE, RANK, PATCH), latent, frames, overrides)
  config = step_time.make_config(args, case)
  config.optim.start_clip_iter = 0  # official clips only from start_clip_iter (20000); both clip from step 0 here
  for key, value in ours_overrides:
    if key in _NOT_FOR.get(design, ()):
      continue  # e.g. a Matrix Attention width for Latte/DiT3D: lets one override list serve every design
    if key in config.model and key != 'overrides':
      config.model[key] = value
    else:
      config.model.overrides[key] = value
  return config


class Ours:
  """Our compiled train step and forward for one config (the calls of step_time.Built)."""

  def __init__(self, config, latent: int, video: np.ndarray):
    """`video`: (B, T, H, W, C) float32 latents, the batch of every step."""
    from framedit_jax.parallel import mesh as mesh_lib  # pylint: disable=g-import-not-at-top
    from framedit_jax.train import experiment  # pylint: disable=g-import-not-at-top
    from framedit_jax.train.optimizer import make_optimizer  # pylint: disable=g-import-not-at-top
    import step_time  # pylint: disable=g-import-not-at-top
    self.config = config
    self.mesh = mesh_lib.make_mesh(config.mesh)
    self.model = experiment.build_model(config, video.shape[-1], latent)
    diffusion = experiment.training_diffusion(config)
    optimizer = make_optimizer(config.optim)
    with jax.set_mesh(self.mesh):
      self.state, self.shardings = experiment.init_state(config, self.model, optimizer, self.mesh, video.shape[1:])
      batch_shardings = {'video': mesh_lib.batch_sharding(self.mesh, 5),
                         'label': mesh_lib.batch_sharding(self.mesh, 1)}
      host = {'video': video, 'label': np.zeros((video.shape[0],), np.int32)}
      self.batch = jax.device_put(host, batch_shardings)
      self.step, self.compile_s = step_time.compile_train_step(self.model, diffusion, optimizer, config, self.state,
                                                               self.batch, self.shardings, batch_shardings)
      model = self.model
      fwd = jax.jit(lambda p, x, t: model.apply({'params': p}, x, t))
      self.t = jnp.full((video.shape[0],), FWD_T, jnp.int32)
      self.fwd = fwd.lower(self.state.params, self.batch['video'], self.t).compile()

  def load_params(self, params) -> None:
    """Replaces params and EMA with `params` (official init: EMA = copy of the model)."""
    with jax.set_mesh(self.mesh):
      p = jax.device_put(params, self.shardings.params)
      e = jax.device_put(params, self.shardings.ema_params)
    self.state = self.state.replace(params=p, ema_params=e)

  def step_once(self) -> float:
    with jax.set_mesh(self.mesh):
      self.state, metrics = self.step(self.state, self.batch, None)
    return float(jax.block_until_ready(metrics['loss']))

  def fwd_once(self) -> np.ndarray:
    return np.asarray(jax.block_until_ready(self.fwd(self.state.params, self.batch['video'], self.t)))


# ------------------------------------------------------------------------------------------------ official


def load_official_diffusion(src: str):
  """Imports `<src>/diffusion` as package `official_diffusion` (its relative imports resolve inside it)."""
  root = os.path.join(src, 'diffusion')
  init = os.path.join(root, '__init__.py')
  if not os.path.exists(init):
    raise FileNotFoundError(f'--official-src: {init} not found; pass the FrameDiT checkout root.')
  if 'official_diffusion' in sys.modules:
    return sys.modules['official_diffusion']
  spec = importlib.util.spec_from_file_location('official_diffusion', init, submodule_search_locations=[root])
  mod = importlib.util.module_from_spec(spec)
  sys.modules['official_diffusion'] = mod
  spec.loader.exec_module(mod)
  return mod


def official_kwargs(design: str, module) -> dict[str, Any]:
  """Official constructor kwargs for our resolved `VideoDiT` `module` (unconditional: extras=1)."""
  _, _, _, _, fixed, _ = parity_official.CASES[OFFICIAL_CASE[design]]
  kw = dict(input_size=module.input_size, patch_size=module.patch_size, in_channels=module.in_channels,
            hidden_size=module.hidden_size, depth=module.depth, num_frames=module.num_frames, num_classes=1,
            learn_sigma=module.learn_sigma, class_dropout_prob=module.class_dropout_prob,
            mlp_ratio=module.mlp_ratio, **dict(fixed, extras=1))
  if design in ('local', 'full3d'):
    kw['num_heads'] = module.num_heads
  else:
    kw.update(num_row_heads=module.num_heads, qk_col_dim=module.qk_col_dim, v_col_dim=module.v_col_dim,
              num_col_heads=module.num_col_heads, u_type=module.u_type)
    if design.startswith('h_'):
      kw['fuse_mode'] = module.fuse_mode
  return kw


def build_official(src: str, design: str, module, seed: int = 0):
  """The official torch module for `design` with our architecture, its trainable tensors filled with the random
  values of tools/parity_official.random_codes (seeded). Returns (module, state_dict as float32 numpy)."""
  import torch  # pylint: disable=g-import-not-at-top
  if 'timm' not in sys.modules:
    parity_official.install_timm_stub()
  file, cls, _, _, _, _ = parity_official.CASES[OFFICIAL_CASE[design]]
  mod = parity_official.load_official(src, file)
  torch.manual_seed(seed)
  model = getattr(mod, cls)(**official_kwargs(design, module))
  rng = np.random.default_rng(seed)
  with torch.no_grad():
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    for key, tensor in model.state_dict().items():
      if key in trainable:
        tensor.copy_(torch.from_numpy(parity_official.decode(*parity_official.random_codes(
            key, tuple(tensor.shape), rng))))
  sd = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in model.state_dict().items()}
  return model, sd


class Official:
  """The official train step (train.py) and forward on one fixed batch."""

  def __init__(self, src: str, model, video: np.ndarray, lr: float = 1e-4, clip_max_norm: float = 0.1):
    """`video`: (B, T, H, W, C) float32, transposed to the official (B, T, C, H, W)."""
    import torch  # pylint: disable=g-import-not-at-top
    self.torch = torch
    self.model = model.train()
    self.ema = copy.deepcopy(model).eval()
    for p in self.ema.parameters():
      p.requires_grad_(False)
    self.diffusion = load_official_diffusion(src).create_diffusion(timestep_respacing='')
    self.optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0)
    self.clip_max_norm = clip_max_norm
    self.x = torch.from_numpy(np.ascontiguousarray(np.transpose(video, (0, 1, 4, 2, 3))))
    self.t_fwd = torch.full((video.shape[0],), FWD_T, dtype=torch.int64)

  def step_once(self) -> float:
    torch = self.torch
    x = self.x
    t = torch.randint(0, self.diffusion.num_timesteps, (x.shape[0],))
    loss = self.diffusion.training_losses(self.model, x, t, dict(y=None))['loss'].mean()
    if torch.isnan(loss).any():
      self.optimizer.zero_grad(set_to_none=True)
      return float('nan')
    loss.backward()
    torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_max_norm)
    self.optimizer.step()
    self.optimizer.zero_grad()
    with torch.no_grad():
      for e, p in zip(self.ema.parameters(), self.model.parameters()):
        e.lerp_(p.detach(), 1.0 - EMA_DECAY)
    return float(loss.detach())

  def fwd_once(self) -> np.ndarray:
    with self.torch.no_grad():
      out = self.model(self.x, self.t_fwd, y=None)
    return np.transpose(out.numpy(), (0, 1, 3, 4, 2))  # (B, T, H, W, 2C)


# ------------------------------------------------------------------------------------------------ pairs


@dataclasses.dataclass
class Pair:
  design: str
  ours: Ours
  official: Official
  fwd_max_abs_diff: float
  fwd_max_abs: float


def build_pair(src: str, design: str, *, frames: int, latent: int, batch: int, depth: int | None,
               ours_overrides: list[tuple[str, Any]] = (), seed: int = 0) -> Pair:
  """Both frameworks' step and forward for `design` on the same weights and batch; checks the forwards agree.

  The batch is (B, frames, latent, latent, 4) standard-normal latents (seeded). Raises ValueError for an unknown
  design, FileNotFoundError for a bad `src`, and ValueError from `convert_state_dict` if the architectures
  differ.
  """
  from framedit_jax.convert.official import convert_state_dict  # pylint: disable=g-import-not-at-top
  if design not in OFFICIAL_CASE:
    raise ValueError(f'--designs: unknown design {design!r}; choose from {", ".join(OFFICIAL_CASE)}.')
  video = np.random.default_rng(seed).standard_normal((batch, frames, latent, latent, 4)).astype(np.float32)
  config = ours_config(design, frames, latent, batch, depth, ours_overrides)
  ours = Ours(config, latent, video)
  model, sd = build_official(src, design, ours.model, seed)
  # the get_model overrides build_model used (architecture + implementation options), at the batch's shape
  params = convert_state_dict(sd, config.model.name, input_size=latent, num_frames=frames, num_classes=0,
                              **dict(config.model.overrides))
  ours.load_params(params)
  official = Official(src, model, video, lr=config.optim.lr, clip_max_norm=config.optim.clip_max_norm)
  ref = official.fwd_once()
  got = ours.fwd_once()
  return Pair(design, ours, official, float(np.abs(got - ref).max()), float(np.abs(ref).max()))


def time_pair(pair: Pair, rounds: int, warmup: int = 1) -> dict[str, Any]:
  """`warmup` untimed rounds of each timed function, then `rounds` interleaved timed rounds; medians in seconds."""
  t0 = time.perf_counter()
  ours_loss0 = pair.ours.step_once()
  ours_first_s = time.perf_counter() - t0
  official_loss0 = pair.official.step_once()
  pair.ours.fwd_once()
  pair.official.fwd_once()
  for _ in range(warmup - 1):  # XLA's step under glibc malloc takes ~4 steps to settle (benchmarks/README.md)
    for fn in (pair.ours.step_once, pair.official.step_once, pair.ours.fwd_once, pair.official.fwd_once):
      fn()
  times = {k: [] for k in ('ours_step_s', 'official_step_s', 'ours_fwd_s', 'official_fwd_s')}
  calls = {'ours_step_s': pair.ours.step_once, 'official_step_s': pair.official.step_once,
           'ours_fwd_s': pair.ours.fwd_once, 'official_fwd_s': pair.official.fwd_once}
  losses = {'ours': [ours_loss0], 'official': [official_loss0]}
  faults = {'ours_step_s': [], 'official_step_s': []}  # minor page faults of each timed step (the process's)
  for _ in range(rounds):
    for key, fn in calls.items():
      f0, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
      out = fn()
      times[key].append(time.perf_counter() - t0)
      if key in faults:
        faults[key].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
      if key.endswith('step_s'):
        losses[key.split('_')[0]].append(out)
  rec = {k: round(common.median(v), 6) for k, v in times.items()}
  rec['ratio'] = float(f"{rec['ours_step_s'] / rec['official_step_s']:.4g}")
  rec['fwd_ratio'] = float(f"{rec['ours_fwd_s'] / rec['official_fwd_s']:.4g}")
  rec.update({f'{k}_all': [round(x, 6) for x in v] for k, v in times.items()})
  rec['ours_step_faults'], rec['official_step_faults'] = faults['ours_step_s'], faults['official_step_s']
  rec['peak_rss_mb'] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # the process so far
  rec['ours_first_step_s'] = round(ours_first_s, 3)
  rec['ours_losses'] = [round(x, 5) for x in losses['ours']]
  rec['official_losses'] = [round(x, 5) for x in losses['official']]
  return rec


def run_design(src: str, design: str, *, frames: int, latent: int, batch: int, depth: int | None, rounds: int,
               warmup: int = 1, ours_overrides: list[tuple[str, Any]] = ()) -> dict[str, Any]:
  """Builds, checks and times one design; returns its JSON record."""
  pair = build_pair(src, design, frames=frames, latent=latent, batch=batch, depth=depth,
                    ours_overrides=ours_overrides)
  m = pair.ours.model
  rec = {'bench': 'vs_official', 'design': design, 'ours_model': pair.ours.config.model.name,
         'official_class': parity_official.CASES[OFFICIAL_CASE[design]][1], 'num_frames': frames,
         'latent_size': latent, 'batch': batch, 'depth': m.depth, 'hidden_size': m.hidden_size,
         'num_heads': m.num_heads, 'dtype': pair.ours.config.model.dtype, 'ours_overrides': dict(ours_overrides),
         'params': int(sum(np.prod(a.shape) for a in jax.tree.leaves(pair.ours.state.params))),
         'official_params': int(sum(p.numel() for p in pair.official.model.parameters() if p.requires_grad)),
         'ours_settings': {k: getattr(m, k) for k in ('scan_blocks', 'remat_policy', 'cpu_kernels')},
         'ours_compile_s': round(pair.ours.compile_s, 3),
         'fwd_max_abs_diff': pair.fwd_max_abs_diff, 'fwd_max_abs': pair.fwd_max_abs}
  rec['warmup_rounds'] = warmup
  rec.update(time_pair(pair, rounds, warmup))
  del pair
  gc.collect()
  return rec


def table(records: list[dict[str, Any]]) -> list[str]:
  lines = ['# ours vs official (median seconds; ratio = ours / official, < 1 means ours is faster)',
           f'# {"design":<9} {"ours_step":>10} {"off_step":>10} {"ratio":>6} {"ours_fwd":>10} {"off_fwd":>10} '
           f'{"ratio":>6} {"fwd_diff":>9}']
  for r in records:
    lines.append(f'# {r["design"]:<9} {r["ours_step_s"]:>10.4f} {r["official_step_s"]:>10.4f} {r["ratio"]:>6.3g} '
                 f'{r["ours_fwd_s"]:>10.4f} {r["official_fwd_s"]:>10.4f} {r["fwd_ratio"]:>6.3g} '
                 f'{r["fwd_max_abs_diff"]:>9.1e}')
  return lines


def set_threads(n: int) -> list[int]:
  """torch intra-op threads = n; pins this process to n of its allowed CPUs (JAX's CPU pools follow the mask).

  Call before the first JAX computation. Returns the CPUs pinned to. Raises ValueError if n < 1.
  """
  import torch  # pylint: disable=g-import-not-at-top
  if n < 1:
    raise ValueError(f'--threads must be >= 1, got {n}.')
  allowed = sorted(os.sched_getaffinity(0))
  cpus = allowed[:n]
  os.sched_setaffinity(0, cpus)
  torch.set_num_threads(n)
  return cpus


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument('--official-src', required=True, help='root of the official FrameDiT checkout')
  p.add_argument('--designs', default='local,g,h_concat,h_gated,full3d',
                 help=f'comma list of {",".join(OFFICIAL_CASE)}')
  p.add_argument('--frames', type=int, default=16, help='num_frames F')
  p.add_argument('--depth', type=int, default=12, help='blocks (S default 12)')
  p.add_argument('--batch', type=int, default=2)
  p.add_argument('--latent', type=int, default=16, help='latent H=W (16 -> N=64 tokens per frame at patch 2)')
  p.add_argument('--threads', type=int, default=2, help='torch threads and CPUs this process is pinned to')
  p.add_argument('--rounds', type=int, default=3, help='interleaved timing rounds')
  p.add_argument('--warmup', type=int, default=1, help='untimed rounds first (1 = the compile / first call only)')
  p.add_argument('--ours-override', action='append', default=[], metavar='KEY=VALUE',
                 help='config.model field or get_model kwarg for ours, e.g. scan_blocks=True (repeatable)')
  p.add_argument('--out', help='append JSON lines here')
  args = p.parse_args(argv)
  args.designs = common.parse_list(args.designs)
  for d in args.designs:
    if d not in OFFICIAL_CASE:
      p.error(f'--designs: unknown design {d!r}; choose from {", ".join(OFFICIAL_CASE)}')
  for k in ('frames', 'batch', 'latent', 'rounds', 'depth'):
    if getattr(args, k) < 1:
      p.error(f'--{k} must be >= 1, got {getattr(args, k)}')
  if not os.path.isdir(os.path.join(args.official_src, 'models')):
    p.error(f'--official-src: {args.official_src}/models not found; pass the FrameDiT checkout root')
  try:
    args.ours_override = [parse_override(o) for o in args.ours_override]
  except ValueError as e:
    p.error(str(e))
  return args


def main(argv=None, pin_threads: bool = True) -> list[dict[str, Any]]:
  """Runs the comparison; returns the design records (also printed as JSON lines, then a table)."""
  import torch  # pylint: disable=g-import-not-at-top
  args = parse_args(argv)
  cpus = set_threads(args.threads) if pin_threads else sorted(os.sched_getaffinity(0))
  header = {'bench': 'vs_official', 'header': True, **common.machine_info(), 'torch': torch.__version__,
            'torch_threads': torch.get_num_threads(), 'cpus': cpus, 'threads': args.threads,
            'rounds': args.rounds, 'warmup': args.warmup, 'official_src': os.path.abspath(args.official_src),
            'xla_flags': os.environ.get('XLA_FLAGS', ''), 'ld_preload': os.environ.get('LD_PRELOAD', '')}
  common.emit(header, args.out)
  records = []
  for design in args.designs:
    rec = run_design(args.official_src, design, frames=args.frames, latent=args.latent, batch=args.batch,
                     depth=args.depth, rounds=args.rounds, warmup=args.warmup, ours_overrides=args.ours_override)
    if rec['fwd_max_abs_diff'] > 1e-3 * max(1.0, rec['fwd_max_abs']):
      print(f'# WARNING {design}: forward outputs differ by {rec["fwd_max_abs_diff"]:.2e}; not the same model?',
            flush=True)
    common.emit(rec, args.out)
    records.append(rec)
  print('\n'.join(table(records)), flush=True)
  return records


if __name__ == '__main__':
  main()

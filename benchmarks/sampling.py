"""Time to sample one video with DDPM-250 and DDIM-50, per temporal design.

Uses the training code's sampler (`framedit_jax.train.generate.Sampler`: the registry's loop as one jitted
lax.scan, params as arguments) on a model built like the training loop builds it (`framedit_jax.train.experiment.build_model`), with
random weights (timing does not depend on them). Per (design, sampler) one JSON line:

  compile_s     lower + compile of the whole sampling loop (s)
  video_s       median wall time of one call, i.e. one batch of --batch videos (s), after one warm-up call
  ms_per_step   video_s / steps
  flops_video   analytic model FLOPs of the loop (steps x forward, framedit_jax.models.flops)

then a table of video_s relative to Local Factorized. Examples:

  python benchmarks/sampling.py --tiny                 # CPU: tiny width, 8x8 latents, T=16
  python benchmarks/sampling.py --h100 --out benchmarks/results/sampling_h100.jsonl
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # pylint: disable=g-import-not-at-top,wrong-import-position

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import jax.numpy as jnp  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

from framedit_jax.models import flops as flops_lib  # pylint: disable=g-import-not-at-top,wrong-import-position

PRESETS = {
    'tiny': dict(model_size='S', rank='64-256', patch=2, depth=2, hidden_size=64, num_heads=2, size=8, frames=16,
                 batch=1, dtype='float32', repeats=2, designs='local,full3d,g,h_concat,h_gated'),
    'h100': dict(model_size='XL', rank='128-512', patch=2, depth=None, hidden_size=None, num_heads=None, size=32,
                 frames=16, batch=1, dtype='bfloat16', repeats=3, designs='local,full3d,g,h_concat,h_gated'),
}
SAMPLERS = (('ddpm', 250), ('ddim', 50))


def make_config(args, name: str):
  from configs import default  # pylint: disable=g-import-not-at-top
  config = default.get_config()
  config.model.name = name
  config.model.num_classes = 0
  config.model.dtype = args.dtype
  for k in ('depth', 'hidden_size', 'num_heads'):
    if getattr(args, k) is not None:
      config.model.overrides[k] = getattr(args, k)
  config.data.num_frames = args.frames
  config.data.use_image_num = 0
  return config


def run_design(args, design: str) -> list[dict[str, Any]]:
  from framedit_jax.train import experiment  # pylint: disable=g-import-not-at-top
  from framedit_jax.train import generate  # pylint: disable=g-import-not-at-top
  name = common.model_name(design, args.model_size, args.rank, args.patch)
  config = make_config(args, name)
  model = experiment.build_model(config, 4, args.size)
  shape = (args.batch, args.frames, args.size, args.size, 4)
  params = jax.jit(lambda k: model.init({'params': k}, jnp.zeros((1,) + shape[1:]), jnp.zeros((1,), jnp.int32))
                   )(jax.random.PRNGKey(0))['params']
  # Zero-initialised adaLN / final layers make the untrained model output 0; perturb so the work is not trivial.
  params = jax.tree.map(lambda p: p + 1e-3, params)
  overrides = {k: getattr(args, k) for k in ('depth', 'hidden_size', 'num_heads') if getattr(args, k) is not None}
  fshape = flops_lib.shape_from_name(name, input_size=args.size, num_frames=args.frames, batch_size=args.batch,
                                     **overrides)
  fwd = flops_lib.forward_flops(fshape)['total']
  out = []
  for sampler_name, steps in SAMPLERS:
    config.sample.sampler = sampler_name
    config.sample.num_steps = steps
    rec = {'bench': 'sampling', 'design': design, 'model': name, 'sampler': sampler_name, 'steps': steps,
           'latent_size': args.size, 'num_frames': args.frames, 'batch': args.batch, 'dtype': args.dtype,
           'flops_video': steps * fwd}
    try:
      fn = generate.Sampler(generate.class_apply_fn(model), config, 4).compiled(shape, guided=False)
      key, scale = jax.random.PRNGKey(1), jnp.float32(1.0)
      t0 = time.perf_counter()
      compiled = fn.lower(params, key, None, None, scale).compile()
      rec['compile_s'] = round(time.perf_counter() - t0, 3)
      z = jax.block_until_ready(compiled(params, key, None, None, scale))
      if not np.all(np.isfinite(np.asarray(z))):
        raise FloatingPointError(f'{name} {sampler_name}: non-finite samples')
      times = common.time_calls(lambda: compiled(params, key, None, None, scale), args.repeats)
      video_s = common.median(times)
      rec.update({'oom': False, 'video_s': round(video_s, 4), 'ms_per_step': round(1e3 * video_s / steps, 3),
                  'achieved_tflops': round(steps * fwd / video_s / 1e12, 6)})
    except Exception as err:  # pylint: disable=broad-except
      if not common.is_oom(err):
        raise
      rec.update({'oom': True, 'error': str(err).splitlines()[0][:300]})
    out.append(rec)
  return out


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  g = p.add_mutually_exclusive_group()
  g.add_argument('--tiny', action='store_true', help='CPU preset (default)')
  g.add_argument('--h100', action='store_true', help='XL/2 bf16 at 256^2 (32x32 latents), T=16')
  p.add_argument('--designs', help=f'comma list of {",".join(common.DESIGNS)}')
  p.add_argument('--frames', type=int)
  p.add_argument('--size', type=int, help='latent H = W')
  p.add_argument('--model-size')
  p.add_argument('--rank')
  p.add_argument('--patch', type=int)
  p.add_argument('--depth', type=int)
  p.add_argument('--hidden-size', type=int)
  p.add_argument('--num-heads', type=int)
  p.add_argument('--batch', type=int)
  p.add_argument('--dtype', choices=('float32', 'bfloat16'))
  p.add_argument('--repeats', type=int)
  p.add_argument('--out')
  args = p.parse_args(argv)
  preset = PRESETS['h100' if args.h100 else 'tiny']
  for k, v in preset.items():
    if getattr(args, k, None) is None:
      setattr(args, k, v)
  args.preset = 'h100' if args.h100 else 'tiny'
  return args


def main(argv=None) -> list[dict[str, Any]]:
  args = parse_args(argv)
  common.emit({'bench': 'sampling', 'header': True, 'preset': args.preset, **common.machine_info()}, args.out)
  records = []
  for design in common.parse_list(args.designs):
    for rec in run_design(args, design):
      common.emit(rec, args.out)
      records.append(rec)
  base = {r['sampler']: r for r in records if r['design'] == 'local' and not r['oom']}
  print(f'# video_s relative to Local Factorized ({args.frames} frames, latent {args.size}x{args.size}, '
        f'batch {args.batch})')
  for r in records:
    b = base.get(r['sampler'])
    rel = f'{r["video_s"] / b["video_s"]:.2f}' if b and not r['oom'] else '-'
    shown = 'OOM' if r['oom'] else f'{r["video_s"]:.3f}s'
    print(f'# {r["design"]:<10} {r["sampler"]}-{r["steps"]:<4} {shown:>10} x{rel}')
  return records


if __name__ == '__main__':
  main()

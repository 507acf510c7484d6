"""Times 250-step DDPM sampling of a demo-sized model: one jitted lax.scan vs a Python loop of jitted steps.

Both paths run the same diffusion math (framedit_jax.diffusion p_sample, same PRNG stream) on the same model
(framedit_jax.models.get_model), with params passed as jit arguments. Each is run once to compile, then timed
over --repeats runs. Prints one JSON line per path and a summary line with the ratio loop/scan, e.g.

  python benchmarks/sampling_scan.py                      # demo: FrameDiTH-S/64-256/2-concat, 8x8 latents
  python benchmarks/sampling_scan.py --depth 2 --hidden-size 64 --num-frames 4   # quick CPU check
"""

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

from framedit_jax.diffusion import create_diffusion
from framedit_jax.models import get_model


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument('--model', default='FrameDiTH-S/64-256/2-concat')
  p.add_argument('--input-size', type=int, default=8, help='latent H = W')
  p.add_argument('--num-frames', type=int, default=16)
  p.add_argument('--batch', type=int, default=2)
  p.add_argument('--steps', default='250', help='timestep_respacing of the sampler')
  p.add_argument('--depth', type=int, default=None, help='override (smaller = faster check)')
  p.add_argument('--hidden-size', type=int, default=None, help='override (must divide by num_heads)')
  p.add_argument('--num-heads', type=int, default=None)
  p.add_argument('--dtype', default='float32')
  p.add_argument('--repeats', type=int, default=3)
  args = p.parse_args()

  overrides = dict(input_size=args.input_size, num_frames=args.num_frames, dtype=args.dtype)
  for k in ('depth', 'hidden_size', 'num_heads'):
    if getattr(args, k) is not None:
      overrides[k] = getattr(args, k)
  module = get_model(args.model, **overrides)
  shape = (args.batch, args.num_frames, args.input_size, args.input_size, module.in_channels)
  x = jnp.zeros(shape, jnp.float32)
  t = jnp.zeros((args.batch,), jnp.int32)
  params = module.init({'params': jax.random.PRNGKey(0), 'dropout': jax.random.PRNGKey(1)}, x, t)['params']
  n_params = sum(int(np.prod(a.shape)) for a in jax.tree_util.tree_leaves(params))
  diffusion = create_diffusion(args.steps)

  def model_fn(x, t, params):
    return module.apply({'params': params}, x, t, train=False).astype(jnp.float32)

  @jax.jit
  def scan_sample(params, key):
    return diffusion.p_sample_loop(model_fn, shape, key, model_kwargs={'params': params})

  @jax.jit
  def step(params, x, i, key_steps):
    tb = jnp.full((shape[0],), i, jnp.int32)
    return diffusion.p_sample(model_fn, x, tb, jax.random.fold_in(key_steps, i),
                              model_kwargs={'params': params})['sample']

  def loop_sample(params, key):
    key_init, key_steps = jax.random.split(key)
    x = jax.random.normal(key_init, shape, jnp.float32)
    for i in range(diffusion.num_timesteps - 1, -1, -1):
      x = step(params, x, jnp.int32(i), key_steps)
    return x

  key = jax.random.PRNGKey(42)
  results = {}
  for name, fn in (('scan', scan_sample), ('python_loop', loop_sample)):
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn(params, key))
    first = time.perf_counter() - t0
    times = []
    for _ in range(args.repeats):
      t0 = time.perf_counter()
      out = jax.block_until_ready(fn(params, key))
      times.append(time.perf_counter() - t0)
    results[name] = out
    best = min(times)
    print(json.dumps({
        'mode': name, 'model': args.model, 'params': n_params, 'shape': list(shape), 'steps': diffusion.num_timesteps,
        'device': jax.devices()[0].device_kind, 'first_call_s': round(first, 3), 'best_s': round(best, 4),
        'median_s': round(float(np.median(times)), 4), 'ms_per_step': round(1e3 * best / diffusion.num_timesteps, 3),
    }), flush=True)
    results[name + '_best'] = best
    results[name + '_median'] = float(np.median(times))
  diff = float(jnp.max(jnp.abs(results['scan'] - results['python_loop'])))
  print(json.dumps({'summary': True, 'loop_over_scan_best': round(results['python_loop_best'] / results['scan_best'], 3),
                    'loop_over_scan_median': round(results['python_loop_median'] / results['scan_median'], 3),
                    'max_abs_diff_scan_vs_loop': diff}), flush=True)


if __name__ == '__main__':
  main()

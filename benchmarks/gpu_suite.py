"""The GPU checks of issue 12 in one process, under a time budget (run it through `benchmarks/gpu.sh`).

Sections, each one JSON line per measurement into `--out-dir/<section>.jsonl` (a failing section records its error
and the next one runs):

  attention  cuDNN flash attention (`jax.nn.dot_product_attention(implementation='cudnn')`, bf16) against the
             float32-softmax einsum reference: max |a - b| / max |b| (target <= 1e-2), on raw q/k/v and on a
             FrameDiT-H forward with attention_kernel='cudnn' vs 'einsum'.
  mfu        FrameDiTH-XL/128-512/2-concat train step at 16x256^2 (32x32 latents) in bf16 for each remat policy;
             MFU = analytic model FLOPs (3x forward) / step time / --peak-tflops. The best policy is reported.
  ratios     Latte / FrameDiT-G / FrameDiT-H / DiT3D XL/2 train-step times at 128^2 (16x16 latents),
             T = 16, 32, 64, 128, relative to Latte.
  longest_t  the longest T (from --long-frames) whose compiled H-XL/2 and DiT3D-XL/2 train step fits in device
             memory at 128^2, batch 1, remat 'full': from `compiled.memory_analysis()` (arguments + outputs +
             temporaries - aliased) against the device's `bytes_limit`, then confirmed by running one step.
  sampling   one video with DDPM-250 from H-XL/2 at 16x256^2 (one jitted lax.scan): compile and wall time.

Only the light parts of the package are imported (models, diffusion, train.step/optimizer/state, parallel.mesh,
configs.default): the GPU image has jax/flax/optax but no TensorFlow. `--smoke` shrinks every model to a few
layers and small sizes so the script can be checked on a CPU.

  python benchmarks/gpu_suite.py --out-dir benchmarks/results/gpu_h200 --budget-s 480
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from typing import Any, Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # pylint: disable=g-import-not-at-top,wrong-import-position
import step_time  # pylint: disable=g-import-not-at-top,wrong-import-position

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import jax.numpy as jnp  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

from framedit_jax.models import flops as flops_lib  # pylint: disable=g-import-not-at-top,wrong-import-position

H_XL = 'FrameDiTH-XL/128-512/2-concat'
RATIO_MODELS = {'local': 'Latte-XL/2', 'g': 'FrameDiTG-XL/128-512/2', 'h_concat': H_XL, 'full3d': 'DiT3D-XL/2'}
SMOKE_ARCH = dict(depth=2, hidden_size=64, num_heads=2)


class Budget:
  """Wall-clock budget shared by the sections: `left()` seconds remain; sections skip work when it is spent."""

  def __init__(self, seconds: float):
    self.end = time.monotonic() + seconds

  def left(self) -> float:
    return self.end - time.monotonic()


def _config(name: str, frames: int, batch: int, dtype: str, remat_policy: str, smoke: bool):
  from configs import default  # pylint: disable=g-import-not-at-top
  config = default.get_config()
  config.model.name = name
  config.model.num_classes = 0
  config.model.dtype = dtype
  config.model.remat_policy = remat_policy
  config.model.scan_blocks = True
  if smoke:
    for k, v in SMOKE_ARCH.items():
      config.model.overrides[k] = v
    if 'FrameDiT' in name:
      config.model.overrides.update(dict(qk_col_dim=8, v_col_dim=32, num_col_heads=4))
  config.data.num_frames = frames
  config.data.global_batch_size = batch
  config.optim.start_clip_iter = 0
  return config


def _model(config, size: int):
  from framedit_jax.models import get_model  # pylint: disable=g-import-not-at-top
  m = config.model
  return get_model(m.name, input_size=size, num_frames=config.data.num_frames, num_classes=0, dtype=m.dtype,
                   remat_policy=m.remat_policy, scan_blocks=m.scan_blocks, **dict(m.overrides))


def _analytic_step_flops(config, size: int, batch: int) -> float:
  shape = flops_lib.shape_from_name(config.model.name, input_size=size, num_frames=config.data.num_frames,
                                    batch_size=batch, **dict(config.model.overrides))
  return float(flops_lib.train_step_flops(shape))


class StepCase:
  """The real jitted train step (hybrid loss, clip, AdamW, EMA) of one config, compiled ahead of time."""

  def __init__(self, config, size: int, batch: int, run: bool = True):
    from framedit_jax.diffusion import create_diffusion  # pylint: disable=g-import-not-at-top
    from framedit_jax.train.optimizer import make_optimizer  # pylint: disable=g-import-not-at-top
    from framedit_jax.train.state import create_train_state  # pylint: disable=g-import-not-at-top
    self.model = _model(config, size)
    diffusion = create_diffusion(timestep_respacing='')
    optimizer = make_optimizer(config.optim)
    shape = (batch, config.data.num_frames, size, size, 4)
    x = jnp.zeros((1,) + shape[1:], jnp.float32)

    def init(key):
      params = self.model.init({'params': key}, x, jnp.zeros((1,), jnp.int32))['params']
      params = jax.tree.map(lambda p: p + 1e-3, params)  # away from the all-zero adaLN init
      return create_train_state(params, optimizer, key)

    abstract = jax.eval_shape(init, jax.random.PRNGKey(0))
    batch_abs = {'video': jax.ShapeDtypeStruct(shape, jnp.float32), 'label': jax.ShapeDtypeStruct((batch,), jnp.int32)}
    # the training loop's jitted step, compiled as step_time does (make_train_step's wrapper has no .lower)
    self.compiled, self.compile_s = step_time.compile_train_step(self.model, diffusion, optimizer, config, abstract,
                                                                 batch_abs, None, None)
    self.memory = _memory_bytes(self.compiled)
    self.params = int(sum(np.prod(a.shape) for a in jax.tree.leaves(abstract.params)))
    self._init = init
    self.state = self.init_state() if run else None
    self.batch = {'video': jax.random.normal(jax.random.PRNGKey(1), shape), 'label': jnp.zeros((batch,), jnp.int32)}

  def init_state(self):
    return jax.jit(self._init)(jax.random.PRNGKey(0))

  def time(self, n: int) -> list[float]:
    if self.state is None:
      self.state = self.init_state()
    times = []
    for i in range(n + 1):
      t0 = time.perf_counter()
      self.state, metrics = self.compiled(self.state, self.batch, None)
      jax.block_until_ready(metrics['loss'])
      if i:  # the first call is a warm-up
        times.append(time.perf_counter() - t0)
    if not np.isfinite(float(metrics['loss'])):
      raise FloatingPointError('non-finite loss')
    return times


def _memory_bytes(compiled) -> int | None:
  try:
    m = compiled.memory_analysis()
    return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes - m.alias_size_in_bytes)
  except Exception:  # pylint: disable=broad-except
    return None


def _device_limit() -> int | None:
  stats = common.device_memory_stats() or {}
  return stats.get('bytes_limit')


def section_attention(args, emit: Callable[[dict], None], budget: Budget) -> None:
  from framedit_jax.models.attention import dot_product_attention  # pylint: disable=g-import-not-at-top
  on_gpu = jax.default_backend() == 'gpu'
  for b, length, heads, dim in ((2, 1024, 16, 72), (8, 4096, 16, 72), (64, 16, 16, 72)):
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    q, k, v = (jax.random.normal(kk, (b, length, heads, dim), jnp.bfloat16) for kk in keys)
    ref = dot_product_attention(q, k, v, 'einsum').astype(jnp.float32)
    got = jax.jit(lambda q, k, v: dot_product_attention(q, k, v, 'cudnn'))(q, k, v).astype(jnp.float32)
    rel = float(jnp.max(jnp.abs(got - ref)) / jnp.max(jnp.abs(ref)))
    hlo = jax.jit(lambda q, k, v: dot_product_attention(q, k, v, 'cudnn')).lower(q, k, v).compile().as_text()
    emit({'section': 'attention', 'what': 'qkv', 'shape': [b, length, heads, dim], 'rel_diff': rel,
          'cudnn_in_hlo': ('cudnn' in hlo.lower()) if on_gpu else None, 'ok': rel <= 1e-2})
  size, frames = (8, 4) if args.smoke else (32, 16)
  outs = {}
  for kernel in ('einsum', 'cudnn'):
    config = _config(H_XL, frames, 1, 'bfloat16', 'none', args.smoke)
    config.model.attention_kernel = kernel
    from framedit_jax.models import get_model  # pylint: disable=g-import-not-at-top
    m = config.model
    model = get_model(m.name, input_size=size, num_frames=frames, dtype='bfloat16', attention_kernel=kernel,
                      scan_blocks=True, **dict(m.overrides))
    x = jax.random.normal(jax.random.PRNGKey(2), (1, frames, size, size, 4))
    t = jnp.array([500])
    params = jax.jit(model.init)({'params': jax.random.PRNGKey(3)}, x, t)['params']
    params = jax.tree.map(lambda p: p + 1e-2 * jax.random.normal(jax.random.PRNGKey(4), p.shape), params)
    outs[kernel] = jax.jit(lambda p, x, t: model.apply({'params': p}, x, t))(params, x, t)
  rel = float(jnp.max(jnp.abs(outs['cudnn'] - outs['einsum'])) / jnp.max(jnp.abs(outs['einsum'])))
  emit({'section': 'attention', 'what': f'{H_XL} forward', 'latent': size, 'frames': frames, 'rel_diff': rel,
        'ok': rel <= 1e-2})


def section_mfu(args, emit, budget: Budget) -> None:
  size, frames, batch = (8, 4, 1) if args.smoke else (32, 16, args.batch)
  best = None
  for policy in ('none', 'dots_saveable', 'full'):
    if budget.left() < 60:
      emit({'section': 'mfu', 'remat_policy': policy, 'skipped': 'time budget'})
      continue
    config = _config(H_XL, frames, batch, 'bfloat16', policy, args.smoke)
    rec = {'section': 'mfu', 'model': H_XL, 'latent': size, 'frames': frames, 'batch': batch,
           'dtype': 'bfloat16', 'remat_policy': policy}
    try:
      case = StepCase(config, size, batch)
      times = case.time(args.steps)
      flops = _analytic_step_flops(config, size, batch)
      step_s = common.median(times)
      rec.update(params=case.params, compile_s=round(case.compile_s, 2), step_s=round(step_s, 5),
                 flops_step=flops, mfu=round(flops / step_s / (args.peak_tflops * 1e12), 4),
                 peak_bytes=(common.device_memory_stats() or {}).get('peak_bytes_in_use'))
      if best is None or step_s < best[1]:
        best = (policy, step_s, rec['mfu'])
    except Exception as err:  # pylint: disable=broad-except
      rec.update(oom=common.is_oom(err), error=str(err).splitlines()[0][:300])
    emit(rec)
  if best:
    emit({'section': 'mfu', 'best_remat_policy': best[0], 'step_s': round(best[1], 5), 'mfu': best[2],
          'target_mfu': 0.45, 'ok': best[2] >= 0.45})


def section_ratios(args, emit, budget: Budget) -> None:
  size = 8 if args.smoke else 16
  for frames in ((4, 8) if args.smoke else (16, 32, 64, 128)):
    base = None
    for design, name in RATIO_MODELS.items():
      if budget.left() < 45:
        emit({'section': 'ratios', 'design': design, 'frames': frames, 'skipped': 'time budget'})
        continue
      policy = 'none' if frames <= 32 else 'dots_saveable'
      config = _config(name, frames, 1, 'bfloat16', policy, args.smoke)
      rec = {'section': 'ratios', 'design': design, 'model': name, 'latent': size, 'frames': frames, 'batch': 1,
             'remat_policy': policy}
      try:
        case = StepCase(config, size, 1)
        step_s = common.median(case.time(args.steps))
        base = step_s if design == 'local' else base
        rec.update(compile_s=round(case.compile_s, 2), step_s=round(step_s, 5),
                   ratio_vs_local=round(step_s / base, 4) if base else None,
                   flops_ratio_vs_local=round(_analytic_step_flops(config, size, 1) /
                                              _analytic_step_flops(_config(RATIO_MODELS['local'], frames, 1,
                                                                           'bfloat16', policy, args.smoke),
                                                                   size, 1), 4))
      except Exception as err:  # pylint: disable=broad-except
        rec.update(oom=common.is_oom(err), error=str(err).splitlines()[0][:300])
      emit(rec)


def section_longest_t(args, emit, budget: Budget) -> None:
  size = 8 if args.smoke else 16
  limit = _device_limit()
  frames_list = (4, 8, 16) if args.smoke else tuple(int(f) for f in args.long_frames.split(','))
  for design in ('h_concat', 'full3d'):
    name = RATIO_MODELS[design]
    longest = None
    for frames in frames_list:
      if budget.left() < 40:
        emit({'section': 'longest_t', 'design': design, 'frames': frames, 'skipped': 'time budget'})
        break
      config = _config(name, frames, 1, 'bfloat16', 'full', args.smoke)
      rec = {'section': 'longest_t', 'design': design, 'model': name, 'latent': size, 'frames': frames,
             'remat_policy': 'full', 'bytes_limit': limit}
      try:
        case = StepCase(config, size, 1, run=False)
        rec.update(compile_s=round(case.compile_s, 2), bytes_needed=case.memory)
        fits = limit is None or case.memory is None or case.memory < 0.95 * limit
        if fits:  # confirm by running one step
          case.time(1)
        rec['fits'] = bool(fits)
      except Exception as err:  # pylint: disable=broad-except
        rec.update(fits=False, oom=common.is_oom(err), error=str(err).splitlines()[0][:300])
      emit(rec)
      if not rec['fits']:
        break
      longest = frames
    emit({'section': 'longest_t', 'design': design, 'longest_frames': longest})


def section_sampling(args, emit, budget: Budget) -> None:
  from framedit_jax.diffusion import create_diffusion  # pylint: disable=g-import-not-at-top
  size, frames = (8, 4) if args.smoke else (32, 16)
  config = _config(H_XL, frames, 1, 'bfloat16', 'none', args.smoke)
  model = _model(config, size)
  x = jnp.zeros((1, frames, size, size, 4))
  params = jax.jit(model.init)({'params': jax.random.PRNGKey(0)}, x, jnp.zeros((1,), jnp.int32))['params']
  params = jax.tree.map(lambda p: p + 1e-3, params)
  diffusion = create_diffusion('250')
  fn = jax.jit(lambda p, key: diffusion.p_sample_loop(lambda x_t, t: model.apply({'params': p}, x_t, t),
                                                      x.shape, key))
  t0 = time.perf_counter()
  compiled = fn.lower(params, jax.random.PRNGKey(1)).compile()
  compile_s = time.perf_counter() - t0
  jax.block_until_ready(compiled(params, jax.random.PRNGKey(1)))
  times = common.time_calls(lambda: compiled(params, jax.random.PRNGKey(2)), 2)
  emit({'section': 'sampling', 'model': H_XL, 'sampler': 'ddpm', 'steps': 250, 'latent': size, 'frames': frames,
        'compile_s': round(compile_s, 2), 'video_s': round(common.median(times), 4)})


SECTIONS = {'attention': section_attention, 'mfu': section_mfu, 'ratios': section_ratios,
            'longest_t': section_longest_t, 'sampling': section_sampling}


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument('--out-dir', required=True)
  p.add_argument('--sections', default='attention,mfu,sampling,ratios,longest_t')
  p.add_argument('--budget-s', type=float, default=480.0, help='stop starting new work after this many seconds')
  p.add_argument('--batch', type=int, default=4, help='batch of the MFU case')
  p.add_argument('--steps', type=int, default=3, help='timed steps per case (after one warm-up)')
  p.add_argument('--peak-tflops', type=float, default=989.0, help='dense bf16 peak (H100/H200 SXM: 989)')
  p.add_argument('--long-frames', default='128,192,256,384,512')
  p.add_argument('--smoke', action='store_true', help='tiny models (check the script on a CPU)')
  args = p.parse_args(argv)
  os.makedirs(args.out_dir, exist_ok=True)
  budget = Budget(args.budget_s)
  header = {'bench': 'gpu_suite', 'header': True, **common.machine_info(), 'smoke': args.smoke,
            'peak_tflops': args.peak_tflops}
  common.emit(header, os.path.join(args.out_dir, 'header.jsonl'))
  failed = 0
  for name in args.sections.split(','):
    path = os.path.join(args.out_dir, f'{name}.jsonl')
    emit = lambda rec, path=path: common.emit(rec, path)
    if budget.left() < 30:
      emit({'section': name, 'skipped': 'time budget'})
      continue
    t0 = time.perf_counter()
    try:
      SECTIONS[name](args, emit, budget)
    except Exception as err:  # pylint: disable=broad-except
      failed += 1
      emit({'section': name, 'error': f'{type(err).__name__}: {str(err).splitlines()[0][:300]}',
            'traceback': traceback.format_exc()[-1500:]})
    print(f'# section {name}: {time.perf_counter() - t0:.1f} s', flush=True)
  return 1 if failed else 0


if __name__ == '__main__':
  sys.exit(main())

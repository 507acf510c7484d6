"""Compile the real train step (and the sampler) for a TPU pod or GPU node that is not here: memory, collectives.

  pip install -e '.[aot]'            # libtpu (TPU targets) and the CUDA plugin (GPU targets), jax 0.10.2
  python benchmarks/aot.py --config=configs/taichi256.py --target=tpu:v5e:16x16 \
      --config.mesh.fsdp=-1 --config.mesh.data=1 --per_device_batch=1 --out=benchmarks/results/aot_b.jsonl
  python benchmarks/aot.py --config=configs/taichi256.py --target=cuda:h100x8 --compile=train,sample_step

What runs: the experiment layer's own step (`framedit_jax.train.experiment.Experiment` on the target's
compile-only devices, for any `config.task`: its mesh, `abstract_state()` from `jax.eval_shape` of the task's
init, the task's state shardings, `abstract_batch()`, `abstract_frozen()` and `train_step()` = the jitted, donated
`step.jit_train_step` that `launch/train.py` runs), lowered with abstract arguments carrying those shardings and
compiled by the target's real compiler (`jax.experimental.topologies`, as MaxText's train_compile.py does for
LLMs). Nothing executes and nothing is allocated. `--compile` also takes `sample_step` (one denoising forward of
the sampler's model function, CFG included) and `sample_scan` (the whole jitted sampler: one `lax.scan` over
`config.sample.num_steps`).

One JSON line per compile (stdout, and appended to `--out`): target, model, frames, resolution, per-device and
global batch, mesh, remat policy, dtype, context_parallel, compile seconds, per-device argument / output / alias /
temp / peak bytes against the device's HBM with `fits` or `OOM` (the TPU compiler refuses a program that does not
fit with RESOURCE_EXHAUSTED, which is kept as an OOM row; for CUDA the peak is compared with the device memory
here; with `config.train.host_offload` the host-memory bytes are reported as host_* and left out of the
device peak, which the TPU compiler's own figure, kept as peak_incl_host_bytes, includes), parameter bytes per
device, the collectives of the optimized HLO (count and result bytes per step by kind,
loop bodies times their trip count: benchmarks/aot_hlo.py), and model FLOPs per step from
`framedit_jax.models.flops` (XLA's `cost_analysis()` counts a scan body once and is None on CUDA, so it is only
reported alongside).

The training VAE never enters the train step (it takes latents), so for `vae.name='sd'` a shape-only stand-in
(`LatentShapeVAE`: /8, 4 channels) replaces the weights file, and the T2V task's text cache a shape-only one
(`TextShapeCache`: T5 v1.1 XXL, `(text.max_length, 4096)`). `model.scan_blocks / remat_policy / cpu_kernels`
left at 'auto' resolve to the accelerator row of framedit_jax/models/cpu/defaults.py (the host here is a CPU, whose
row would pick the CPU kernels).
"""

from __future__ import annotations

import os
import sys

# Before JAX starts: the host backend stays the CPU; TPU / CUDA devices are compile-only topologies.
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import time  # pylint: disable=g-import-not-at-top,wrong-import-position
from importlib import metadata  # pylint: disable=g-import-not-at-top,wrong-import-position
from typing import Any  # pylint: disable=g-import-not-at-top,wrong-import-position
from unittest import mock  # pylint: disable=g-import-not-at-top,wrong-import-position

from absl import flags  # pylint: disable=g-import-not-at-top,wrong-import-position
from ml_collections import config_flags  # pylint: disable=g-import-not-at-top,wrong-import-position

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Path to a get_config() file.', lock_config=False)
_TARGET = flags.DEFINE_string('target', None, 'tpu:v5e:16x16 | tpu:v5p:2x2x1 | cuda:h100x8 | ... (aot_targets.py)')
_COMPILE = flags.DEFINE_string('compile', 'train', 'Comma list of train, sample_step, sample_scan.')
_PER_DEVICE_BATCH = flags.DEFINE_integer('per_device_batch', 0, 'If > 0: data.global_batch_size = this x '
                                         'mesh.data x mesh.fsdp (and sample.batch_size likewise).')
_OUT = flags.DEFINE_string('out', None, 'Append the JSON lines here.')
_LABEL = flags.DEFINE_string('label', '', 'Free-text tag stored in each line (e.g. the table it belongs to).')
_DUMP_HLO = flags.DEFINE_string('dump_hlo', None, 'Write each optimized HLO module to <this>.<what>.hlo.txt.')
flags.mark_flags_as_required(['config', 'target'])


class LatentShapeVAE:
  """Shape-only stand-in for the SD VAE (`framedit_jax.vae.video.VideoVAE`): /8 in space, 4 latent channels.

  The train step and the sampler take latents, so the VAE's weights are not part of what is compiled here.
  """
  downsample = 8
  latent_channels = 4
  temporal_downsample = 1


def _versions() -> dict[str, str]:
  import jax  # pylint: disable=g-import-not-at-top
  out = {'jax': jax.__version__}
  for pkg in ('jaxlib', 'libtpu', 'jax-cuda12-plugin'):
    try:
      out[pkg] = metadata.version(pkg)
    except metadata.PackageNotFoundError:
      pass
  return out


def _memory(compiled) -> dict[str, int]:
  ma = compiled.memory_analysis()
  mem = {k: int(getattr(ma, f'{k}_size_in_bytes', 0) or 0) for k in ('argument', 'output', 'alias', 'temp')}
  # config.train.host_offload: the state fields kept in host memory (pinned_host) between steps.
  for k in ('argument', 'output', 'alias', 'temp'):
    mem[f'host_{k}'] = int(getattr(ma, f'host_{k}_size_in_bytes', 0) or 0)
  host = mem['host_argument'] + mem['host_output'] - mem['host_alias'] + mem['host_temp']
  peak = int(getattr(ma, 'peak_memory_in_bytes', 0) or 0)
  # The TPU compiler's peak counts the host-memory buffers too (a 1 GiB pinned_host argument copied in and out
  # reads peak 3 GiB = 2 on the device + 1 on the host): the device's own peak is what is compared with its HBM.
  mem['peak_incl_host'] = peak
  peak = max(peak - host, 0) if peak else 0
  # CUDA reports no peak: arguments + outputs not aliased to (donated) arguments + temporaries.
  mem['peak'] = peak or mem['argument'] + mem['output'] - mem['alias'] + mem['temp']
  mem['peak_reported'] = bool(peak)
  return mem


def _oom_line(err: BaseException) -> str:
  lines = [l.strip() for l in str(err).splitlines() if l.strip()]
  for l in lines:
    if 'exceeds' in l or 'Ran out of memory' in l or 'RESOURCE_EXHAUSTED' in l:
      return l[:400]
  return lines[0][:400] if lines else type(err).__name__


def _sharded_bytes(tree, shardings) -> int:
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  sizes = jax.tree.map(lambda x, s: int(np.prod(s.shard_shape(x.shape))) * x.dtype.itemsize, tree, shardings)
  return int(sum(jax.tree.leaves(sizes)))


def _total_bytes(tree) -> int:
  import jax  # pylint: disable=g-import-not-at-top
  return int(sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(tree)))


def prepare_config(config):
  """Resolves what depends on the target: the 'auto' model settings to the accelerator row (not the CPU host's);
  T2V without a text encoder gets a placeholder text.cache (the cache is `TextShapeCache`), and a latent-cache
  config a placeholder data.latents_dir (the batch is abstract: no data is read)."""
  from framedit_jax.models.cpu import defaults  # pylint: disable=g-import-not-at-top
  for key, value in defaults.resolve(backend='accelerator').items():
    if config.model.get(key, defaults.AUTO) == defaults.AUTO:
      config.model[key] = {True: 'on', False: 'off'}[value] if key == 'cpu_kernels' else value
  if config.get('task', 'video') == 't2v' and not config.text.root and not config.text.get('cache', ''):
    with config.unlocked():
      config.text.cache = '(aot: TextShapeCache)'  # never read: the text cache is shape-only here
  if config.data.get('use_latents', False) and not config.data.get('latents_dir', ''):
    config.data.latents_dir = '(aot: no data is read)'  # the step's batch is abstract; nothing is loaded
  return config


class TextShapeCache:
  """Shape-only stand-in for the T2V task's text-embedding cache (`framedit_jax.text.cache`): T5 v1.1 XXL
  embeddings `(text.max_length, 4096)`. The step takes embeddings, so neither T5 nor a captioned dataset is needed."""

  def __init__(self, config, channels: int = 4096):
    import numpy as np  # pylint: disable=g-import-not-at-top
    length = int(config.text.max_length)
    self.embeddings = np.zeros((1, length, channels), np.float32)
    self.null_embedding = np.zeros((length, channels), np.float32)
    self.null_mask = np.zeros((length,), np.int32)


def build_experiment(config, devs):
  """`Experiment(config, devices=devs)`: the SD VAE replaced by `LatentShapeVAE` and the T2V text cache by
  `TextShapeCache` (no weights files, no dataset); everything else is the experiment layer's own."""
  from framedit_jax.train.experiment import Experiment  # pylint: disable=g-import-not-at-top
  from framedit_jax.train.tasks import t2v as t2v_task  # pylint: disable=g-import-not-at-top
  patches = [mock.patch.object(t2v_task.T2VTask, '_text_cache', lambda self: TextShapeCache(self.config))]
  if config.vae.name == 'sd':
    patches.append(mock.patch('framedit_jax.vae.load_vae', lambda _: LatentShapeVAE()))
  for p in patches:
    p.start()
  try:
    return Experiment(config, devices=devs)
  finally:
    for p in patches:
      p.stop()


def train_args(exp):
  """`(step_fn, abstract (state, batch, frozen), state_shardings)`: the Experiment's jitted step and its
  arguments. A pixel batch that the task's encoder turns into latents before the step is given as latents."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  abstract, shardings = exp.abstract_state()
  state = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), abstract, shardings)
  batch = dict(exp.abstract_batch())
  video = batch['video']
  latent = (video.shape[0],) + tuple(exp.latent_shape)
  if video.shape != latent:  # the step sees the encoder's output (the in-loop VAE encode)
    batch['video'] = jax.ShapeDtypeStruct(latent, jnp.float32, sharding=video.sharding)
  return exp.train_step(shardings), (state, batch, exp.abstract_frozen()), shardings


def sample_args(exp, what: str, abstract_params, param_shardings):
  """`(jitted fn, abstract args)` for 'sample_step' (one guided model call, as the sampler makes it) or
  'sample_scan' (the `generate.Sampler`'s compiled sampler: the whole `lax.scan` over the steps)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from framedit_jax.diffusion.guidance import guided_model_fn  # pylint: disable=g-import-not-at-top
  from framedit_jax.parallel import mesh as mesh_lib  # pylint: disable=g-import-not-at-top
  from framedit_jax.train import generate as gen  # pylint: disable=g-import-not-at-top
  cfg = exp.config
  b = int(cfg.sample.batch_size)
  shards = exp.mesh.shape['data'] * exp.mesh.shape['fsdp']
  rep = mesh_lib.replicated(exp.mesh)
  per_b = (lambda nd: mesh_lib.batch_sharding(exp.mesh, nd)) if b % shards == 0 else (lambda nd: rep)
  sds = lambda shape, dtype, sh: jax.ShapeDtypeStruct(shape, dtype, sharding=sh)
  params = jax.tree.map(lambda x, s: sds(x.shape, x.dtype, s), abstract_params, param_shardings)
  if cfg.get('task', 'video') == 't2v':
    sampler = gen.Sampler(gen.text_apply_fn(exp.model), cfg, exp.latent_shape[-1])
    length, channels = exp.text_shape
    cond = {'text': sds((b, length, channels), jnp.float32, per_b(3)), 'mask': sds((b, length), jnp.int32, per_b(2))}
    null = {'text': sds((length, channels), jnp.float32, rep), 'mask': sds((length,), jnp.int32, rep)}
  else:
    sampler = exp.sampler()
    conditional = int(cfg.model.num_classes) > 0
    cond = {'y': sds((b,), jnp.int32, per_b(1))} if conditional else None
    null = {'y': sds((), jnp.int32, rep)} if conditional else None
  guided = null is not None and float(cfg.sample.cfg_scale) != 1.0
  null = null if guided else None
  scale = sds((), jnp.float32, rep)
  shape = (b,) + tuple(exp.latent_shape)
  if what == 'sample_scan':
    return sampler.compiled(shape, guided), (params, sds((2,), jnp.uint32, rep), cond, null, scale)

  def one_step(p, x_t, t, c, nc, s):
    apply = lambda x, tt, **kw: sampler.apply_fn(p, x, tt, **kw)
    return guided_model_fn(apply, c, nc, s, sampler.eps_channels)(x_t, t)

  x = sds(shape, jnp.float32, per_b(5))
  return jax.jit(one_step), (params, x, sds((b,), jnp.int32, per_b(1)), cond, null, scale)


def model_flops(config, exp, what: str) -> int:
  """Model FLOPs (models/flops.py convention) of one call of `what`, for the whole global batch."""
  from framedit_jax.models import flops  # pylint: disable=g-import-not-at-top
  m = config.model
  overrides = {k: v for k, v in dict(m.get('overrides', {})).items()}
  t_latent, size = exp.latent_shape[0] - int(config.data.use_image_num), exp.latent_shape[1]
  b = int(config.data.global_batch_size if what == 'train' else config.sample.batch_size)
  if config.get('task', 'video') == 't2v':  # the built T2V module's own fields; L caption tokens from the cache
    fwd = flops.t2v_forward_flops(exp.task.model, input_size=size, num_frames=int(exp.latent_shape[0]),
                                  text_len=int(exp.task.text_shape[0]), batch_size=b)['total']
    return flops.TRAIN_FLOPS_MULTIPLIER * fwd if what == 'train' else _per_call(config, what, fwd)
  try:
    s = flops.shape_from_name(m.name, input_size=size, num_frames=t_latent, batch_size=b,
                              in_channels=exp.latent_shape[-1], learn_sigma=bool(m.learn_sigma), **overrides)
  except (KeyError, TypeError):
    return -1  # a model flops.py does not describe (design space, VideoDiT)
  if what == 'train':
    return flops.train_step_flops(s)  # = the video task's flops_per_step() (its MFU figure)
  return _per_call(config, what, flops.forward_flops(s)['total'])


def _per_call(config, what: str, fwd: int) -> int:
  """A sampling call's FLOPs from one forward: doubled under guidance, times the steps of the scan."""
  guided = (int(config.model.get('num_classes', 0)) > 0 or config.get('task', 'video') == 't2v') and \
      float(config.sample.cfg_scale) != 1.0
  return fwd * (2 if guided else 1) * (int(config.sample.num_steps) if what == 'sample_scan' else 1)


def compile_one(fn, args, exp, target, what: str, extra: dict[str, Any]) -> dict[str, Any]:
  """Lowers and compiles `fn(*args)` under the experiment's mesh; returns the JSON record."""
  import jax  # pylint: disable=g-import-not-at-top
  import aot_hlo  # pylint: disable=g-import-not-at-top
  import common  # pylint: disable=g-import-not-at-top
  cfg = exp.config
  mesh = dict(exp.mesh.shape)
  rec: dict[str, Any] = dict(
      bench='aot', label=_LABEL.value, what=what, target=target.name, device_kind=None,
      num_devices=int(exp.mesh.size), model=cfg.model.name, frames=int(cfg.data.num_frames),
      latent_frames=int(exp.latent_shape[0]), resolution=int(cfg.data.image_size),
      latent_size=int(exp.latent_shape[1]),
      global_batch=int(cfg.data.global_batch_size if what == 'train' else cfg.sample.batch_size), mesh=mesh,
      remat_policy=cfg.model.get('remat_policy', 'none'), scan_blocks=bool(cfg.model.get('scan_blocks', False)),
      dtype=cfg.model.get('dtype', ''), attention_kernel=cfg.model.get('attention_kernel', ''),
      context_parallel=cfg.model.get('context_parallel', 'gather'),
      grad_accum_steps=int(cfg.optim.get('grad_accum_steps', 1)), task=cfg.get('task', 'video'),
      host_offload=bool(cfg.train.get('host_offload', False)))
  rec['per_device_batch'] = rec['global_batch'] / (mesh['data'] * mesh['fsdp'])
  rec['device_kind'] = exp.mesh.devices.flat[0].device_kind
  rec.update(extra)
  flops_total = model_flops(cfg, exp, what)
  rec['model_flops'] = flops_total
  rec['model_flops_per_device'] = flops_total / exp.mesh.size if flops_total > 0 else -1
  rec['hbm_bytes'] = target.hbm_bytes
  t0 = time.perf_counter()
  try:
    with jax.set_mesh(exp.mesh):
      lowered = fn.lower(*args)
      t1 = time.perf_counter()
      compiled = lowered.compile()
  except Exception as e:  # pylint: disable=broad-except
    rec['compile_s'] = round(time.perf_counter() - t0, 1)
    rec['status'] = 'OOM' if common.is_oom(e) else 'error'
    rec['error'] = _oom_line(e)
    return rec
  rec['lower_s'] = round(t1 - t0, 1)
  rec['compile_s'] = round(time.perf_counter() - t0, 1)
  mem = _memory(compiled)
  rec.update({f'{k}_bytes': v for k, v in mem.items() if k != 'peak_reported'})
  rec['peak_reported'] = mem['peak_reported']
  rec['peak_gib'] = round(mem['peak'] / 2**30, 3)
  rec['peak_frac_hbm'] = round(mem['peak'] / target.hbm_bytes, 4)
  rec['status'] = 'fits' if mem['peak'] <= target.hbm_bytes else 'OOM'
  hlo = compiled.as_text()
  if _DUMP_HLO.value:
    with open(f'{_DUMP_HLO.value}.{what}.hlo.txt', 'w') as f:
      f.write(hlo)
  rec['collectives'] = aot_hlo.collective_stats(hlo)
  try:
    ca = compiled.cost_analysis()
    ca = ca[0] if isinstance(ca, (list, tuple)) else ca
    rec['xla_flops_scan_body_once'] = float(ca.get('flops', -1)) if ca else None
  except Exception:  # pylint: disable=broad-except
    rec['xla_flops_scan_body_once'] = None
  return rec


def run(config, target_name: str, what_list: list[str], per_device_batch: int = 0, out: str | None = None,
        extra: dict[str, Any] | None = None) -> list[dict[str, Any]]:
  """Compiles each of `what_list` for `target_name`; emits and returns the records."""
  import aot_targets  # pylint: disable=g-import-not-at-top
  import common  # pylint: disable=g-import-not-at-top
  target = aot_targets.parse_target(target_name)
  bad = sorted(set(what_list) - {'train', 'sample_step', 'sample_scan'})
  if bad:
    raise ValueError(f'--compile: unknown {bad}; use train, sample_step, sample_scan.')
  from framedit_jax.parallel.mesh import with_memory_kind  # pylint: disable=g-import-not-at-top
  devs = aot_targets.devices(target)
  config = prepare_config(config)
  if per_device_batch > 0:
    from framedit_jax.parallel.mesh import mesh_shape  # pylint: disable=g-import-not-at-top
    data, fsdp, _ = mesh_shape(config.mesh, len(devs))
    config.data.global_batch_size = per_device_batch * data * fsdp
    config.sample.batch_size = per_device_batch * data * fsdp
  exp = build_experiment(config, devs)
  base = dict(extra or {}, **_versions(), commit=common.git_commit(dirty=True), host_cpu=common.cpu_model(),
              host_cores=os.cpu_count(), xla_flags=os.environ.get('XLA_FLAGS', ''))
  records = []
  step, args, shardings = train_args(exp)
  base['param_bytes_total'] = _total_bytes(args[0].params)
  base['param_bytes_per_device'] = _sharded_bytes(args[0].params, shardings.params)
  base['state_bytes_per_device'] = _sharded_bytes(args[0], shardings)
  for what in what_list:
    if what == 'train':
      fn, fargs = step, args
    else:
      # sampling reads the EMA weights from device memory (generate.Sampler copies host-offloaded ones in)
      fn, fargs = sample_args(exp, what, args[0].ema_params, with_memory_kind(shardings.ema_params, 'device'))
    rec = compile_one(fn, fargs, exp, target, what, base)
    common.emit(rec, out)
    records.append(rec)
  return records


def main(argv):
  del argv
  from framedit_jax.train.validate import check_fields  # pylint: disable=g-import-not-at-top
  config = prepare_config(_CONFIG.value)  # before the checks: the placeholders stand in for absent data
  check_fields(config)
  run(config, _TARGET.value, [w.strip() for w in _COMPILE.value.split(',') if w.strip()],
      _PER_DEVICE_BATCH.value, _OUT.value)


def cuda_gemm_flags(argv: list[str]) -> None:
  """For a `cuda:` target, compile GEMMs for cuBLAS (`--xla_gpu_enable_triton_gemm=false`) unless XLA_FLAGS
  already sets the flag. A deviceless compile cannot autotune Triton GEMM tiles, and with them every FrameDiT-H
  step fails (`INTERNAL: Couldn't find output tile sizes that satisfy hlo`, docs/scaling.md (a)). Must run
  before jax creates a backend; each record stores the XLA_FLAGS it was compiled with."""
  targets = [a.split('=', 1)[1] for a in argv if a.startswith('--target=')]
  targets += [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == '--target']
  flags_env = os.environ.get('XLA_FLAGS', '')
  if any(t.startswith('cuda') for t in targets) and 'xla_gpu_enable_triton_gemm' not in flags_env:
    os.environ['XLA_FLAGS'] = (flags_env + ' --xla_gpu_enable_triton_gemm=false').strip()


if __name__ == '__main__':
  cuda_gemm_flags(sys.argv[1:])
  from framedit_jax.train import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)

"""Subprocess body of tests/test_parallel_frame.py and tests/test_parallel_sharding.py.

Run with XLA_FLAGS=--xla_force_host_platform_device_count=8 (8 host CPU devices); writes a JSON file of max
absolute differences between frame-parallel / sharded results and single-device references:

  python tests/_parallel_script.py OUT.json

One process for every case keeps the jax import and device setup to one; every reference runs on device 0 alone.
"""

import json
import os
import re
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import AxisType, Mesh, PartitionSpec as P

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repo, for configs/

from configs import default as default_config  # pylint: disable=g-import-not-at-top,wrong-import-position
from framedit_jax.diffusion import create_diffusion  # pylint: disable=wrong-import-position
from framedit_jax.models import get_model  # pylint: disable=wrong-import-position
from framedit_jax.models.attention import dot_product_attention, matrix_attention  # pylint: disable=wrong-import-position
from framedit_jax.parallel import frame_parallel as fp  # pylint: disable=wrong-import-position
from framedit_jax.parallel import mesh as mesh_lib  # pylint: disable=wrong-import-position
from framedit_jax.train.optimizer import make_optimizer  # pylint: disable=wrong-import-position
from framedit_jax.train.state import create_train_state  # pylint: disable=wrong-import-position
from framedit_jax.train.step import train_step  # pylint: disable=wrong-import-position

# Tiny models: hidden 64 (so that the fsdp rule, which skips arrays under 2**14 elements, shards the MLP and adaLN
# kernels), depth 2 (one spatial + one temporal block; DiT3D: two full-3D blocks), T = 8, 8x8 latents, patch 2
# (N = 16 tokens per frame). Matrix Attention: r_qk = 8 rows in C = 4 column heads (a = 2), r_v = 16, R = 4 row heads.
TINY = dict(hidden_size=64, depth=2, num_heads=4, input_size=8, num_frames=8, num_classes=3)
MATRIX = dict(num_col_heads=4, qk_col_dim=8, v_col_dim=16)
DESIGNS = {
    'latte': ('Latte-S/2', {}),
    'dit3d': ('DiT3D-S/2', {}),
    'framedit_g': ('FrameDiTG-S/64-256/2', MATRIX),
    'framedit_h_concat': ('FrameDiTH-S/64-256/2-concat', MATRIX),
    'framedit_h_gated': ('FrameDiTH-S/64-256/2-gated', MATRIX),
}
SHARDED_DESIGNS = ('framedit_g', 'framedit_h_concat', 'latte', 'dit3d')
BATCH = 8


def make_mesh(shape):
  return Mesh(np.asarray(jax.devices()).reshape(shape), mesh_lib.AXES, axis_types=(AxisType.Auto,) * 3)


def maxdiff(a, b) -> float:
  leaves = jax.tree.leaves(jax.tree.map(lambda u, v: jnp.max(jnp.abs(jnp.asarray(u, jnp.float32) - v)), a, b))
  return float(max(leaves)) if leaves else 0.0


def maxabs(a) -> float:
  return float(max(jnp.max(jnp.abs(jnp.asarray(u, jnp.float32))) for u in jax.tree.leaves(a)))


def random_params(abstract, seed):
  """Host-drawn parameters of the given shapes: N(0, 1/fan_in) for matrices, N(0, 0.1) (+1 for LayerNorm scales) for
  vectors. Not the model's init -- adaLN-Zero makes that output exactly 0, a trivial comparison -- and no compile."""
  rng = np.random.default_rng(seed)
  def one(path, leaf):
    shape = leaf.shape
    if len(shape) >= 2:
      return np.float32(rng.normal(size=shape) / np.sqrt(np.prod(shape[:-1])))
    base = 1.0 if jax.tree_util.keystr(path).endswith("['scale']") else 0.0
    return np.float32(base + 0.1 * rng.normal(size=shape))
  return jax.tree_util.tree_map_with_path(one, abstract)


def collective_functions(results):
  """Each `*_sharded` attention function on a (1, 1, 8) mesh vs its unsharded counterpart."""
  mesh = make_mesh((1, 1, 8))
  ks = jax.random.split(jax.random.PRNGKey(0), 6)
  b, t, n, h, dh = 2, 8, 16, 2, 16
  q, k, v = (jax.random.normal(ks[i], (b, t, n, h, dh)) for i in range(3))
  mq, mk = (jax.random.normal(ks[i], (b, t, 8, 32)) for i in (3, 4))
  mv = jax.random.normal(ks[5], (b, t, 16, 32))

  def ref(q, k, v, mq, mk, mv):
    fold = lambda a: jnp.swapaxes(a, 1, 2).reshape(b * n, t, h, dh)
    local = jnp.swapaxes(dot_product_attention(fold(q), fold(k), fold(v)).reshape(b, n, t, h, dh), 1, 2)
    tok = lambda a: a.reshape(b, t * n, h, dh)
    full = dot_product_attention(tok(q), tok(k), tok(v)).reshape(b, t, n, h, dh)
    return local, full, *matrix_attention(mq, mk, mv, 4, 2)

  def sharded(q, k, v, mq, mk, mv):
    local = fp.local_attention_sharded(q, k, v)
    full = fp.full3d_attention_sharded(q, k, v)
    out, weights = fp.matrix_attention_sharded(mq, mk, mv, 4, 2)
    return local, full, out, weights

  frames = P(None, 'frame')
  run = jax.shard_map(sharded, mesh=mesh, in_specs=(frames,) * 6,
                      out_specs=(frames, frames, frames, P(None, None, 'frame')))
  want = jax.jit(ref)(q, k, v, mq, mk, mv)
  got = jax.jit(run)(q, k, v, mq, mk, mv)
  for name, w, g in zip(('local', 'full3d', 'matrix_out', 'matrix_weights'), want, got):
    results['functions'][name] = {'max_diff': maxdiff(g, w), 'max_abs': maxabs(w)}


def inputs(key, batch):
  kx, kt, ky = jax.random.split(key, 3)
  x = jax.random.normal(kx, (batch, TINY['num_frames'], 8, 8, 4))
  t = jax.random.randint(kt, (batch,), 0, 1000)
  y = jax.random.randint(ky, (batch,), 0, TINY['num_classes'] + 1)
  return x, t, y


def models_and_params():
  """`{design: (plain model, model with frame_axis='frame', random params)}`."""
  x, t, y = inputs(jax.random.PRNGKey(1), 1)
  out = {}
  for i, (d, (name, extra)) in enumerate(DESIGNS.items()):
    plain = get_model(name, **TINY, **extra)
    abstract = jax.eval_shape(plain.init, jax.random.PRNGKey(2), x, t, y)['params']
    out[d] = (plain, get_model(name, frame_axis='frame', **TINY, **extra), random_params(abstract, i))
  return out


def forwards(results, models):
  """Frame-parallel forward on (1, 1, 8) (one frame per device) and on 2x2x2 with fsdp-sharded params.

  Each mesh runs every design in one jitted program (fewer compilations).
  """
  mesh8, mesh222 = make_mesh((1, 1, 8)), make_mesh((2, 2, 2))
  x, t, y = inputs(jax.random.PRNGKey(4), BATCH)
  params = {d: p for d, (_, _, p) in models.items()}
  ref = jax.jit(lambda ps, x, t, y: {d: models[d][0].apply({'params': ps[d]}, x, t, y=y) for d in ps})(
      params, x, t, y)
  got8 = jax.jit(lambda ps, x, t, y: {d: fp.apply_frame_parallel(models[d][1], ps[d], x, t, y, mesh=mesh8)
                                      for d in ps})(params, x, t, y)
  sharded = {d: params[d] for d in SHARDED_DESIGNS}
  with jax.set_mesh(mesh222):
    p_sh = jax.device_put(sharded, mesh_lib.state_shardings(mesh222, sharded))
    batch = [jax.device_put(a, mesh_lib.batch_sharding(mesh222, a.ndim)) for a in (x, t, y)]
    got222 = jax.jit(lambda ps, x, t, y: {d: fp.apply_model(models[d][1], ps[d], x, t, y) for d in ps})(
        p_sh, *batch)
  for design in models:
    results['forward_frame8'][design] = {'max_diff': maxdiff(got8[design], ref[design]),
                                         'max_abs': maxabs(ref[design])}
    if design in SHARDED_DESIGNS:
      results['forward_222'][design] = {'max_diff': maxdiff(got222[design], ref[design]),
                                        'max_abs': maxabs(ref[design]),
                                        'out_sharding': str(got222[design].sharding.spec)}


def _tensor_bytes(spec: str) -> int:
  """`tensor<8x1x16x64xf32>` -> 8*1*16*64*4."""
  *dims, dtype = spec[len('tensor<'):-1].split('x')
  return int(np.prod([int(x) for x in dims])) * (int(re.sub(r'\D', '', dtype)) // 8)


def communication(results, models):
  """Bytes each device receives in the lowered (1, 1, 8) frame-parallel forward, per collective kind (no compile)."""
  mesh8 = make_mesh((1, 1, 8))
  x, t, y = inputs(jax.random.PRNGKey(4), BATCH)
  pattern = re.compile(r'"stablehlo\.(all_gather|all_to_all)".*: \((tensor<[^>]+>)\) -> (tensor<[^>]+>)')
  for design, (_, framed, params) in models.items():
    text = jax.jit(lambda p, x, t, y, m=framed: fp.apply_frame_parallel(m, p, x, t, y, mesh=mesh8)).lower(
        params, x, t, y).as_text()
    received = {'all_gather': 0.0, 'all_to_all': 0.0}
    for kind, operand, result in pattern.findall(text):
      # all-gather: (f-1)/f of the result arrives; all-to-all: (f-1)/f of the operand leaves (and as much arrives).
      received[kind] += (7 / 8) * _tensor_bytes(result if kind == 'all_gather' else operand)
    results['communication'][design] = received


def train_config(grad_accum_steps=1, mesh_shape=(2, 2, 2)):
  config = default_config.get_config()
  config.model.num_classes = TINY['num_classes']
  config.optim.grad_accum_steps = grad_accum_steps
  # Adam's first update is lr * g / (|g| + eps): with the official eps = 1e-8 it is about lr * sign(g), which turns
  # float noise in near-zero gradients into parameter differences up to lr. eps = 1 makes the update ~ lr * g, so
  # with lr = 0.1 parameters move by ~1e-2 and their difference reflects the gradient difference.
  config.optim.lr, config.optim.eps = 0.1, 1.0
  config.mesh.data, config.mesh.fsdp, config.mesh.frame = mesh_shape
  return config


def sharded_steps(models, states, host_batch, config, diffusion, optimizer, configs=None):
  """`train_step` for every design in one jit on the config's mesh: states fsdp-sharded, batch on (data, fsdp).

  Like `make_train_step` (donated state, pinned in/out shardings), with several models in one program.
  """
  mesh = make_mesh((config.mesh.data, config.mesh.fsdp, config.mesh.frame))
  shardings = mesh_lib.state_shardings(mesh, states)
  batch_shardings = {k: mesh_lib.batch_sharding(mesh, v.ndim) for k, v in host_batch.items()}
  configs = configs or {}
  step = jax.jit(lambda ss, b: {d: train_step(ss[d], b, model=models[d], diffusion=diffusion, optimizer=optimizer,
                                              config=configs.get(d, config)) for d in ss},
                 donate_argnums=0, in_shardings=(shardings, batch_shardings),
                 out_shardings={d: (shardings[d], None) for d in states})
  with jax.set_mesh(mesh):
    ss = jax.device_put(jax.tree.map(jnp.copy, states), shardings)  # copies: the step donates its input
    n_fsdp = {d: sum('fsdp' in str(a.sharding.spec) for a in jax.tree.leaves(ss[d].params)) for d in ss}
    return step(ss, jax.device_put(host_batch, batch_shardings)), n_fsdp


def compare_steps(new_state, metrics, ref_state, ref_metrics, params, b1):
  grads = lambda st: jax.tree.map(lambda m: m / (1 - b1), optax.tree_utils.tree_get(st.opt_state, 'mu'))
  return {
      'loss': maxdiff(metrics['loss'], ref_metrics['loss']),
      'metrics': maxdiff({k: metrics[k] for k in ref_metrics}, ref_metrics),
      'grads': maxdiff(grads(new_state), grads(ref_state)),  # Adam's first moment after one step is (1 - b1) g
      'params': maxdiff(new_state.params, ref_state.params),
      'opt_state': maxdiff(new_state.opt_state, ref_state.opt_state),
      'ema_params': maxdiff(new_state.ema_params, ref_state.ema_params),
      'param_change': maxdiff(ref_state.params, params),
      'grad_max_abs': maxabs(grads(ref_state)),
      'loss_value': float(ref_metrics['loss']),
  }


def train_steps(results, models):
  """One real `train_step` on 2x2x2 (state fsdp-sharded, frame-parallel model) vs a single-device step.

  Gradient accumulation: FrameDiT-G with grad_accum_steps=4 (micro-batches of 2) on a (1, 2, 4) mesh (each
  micro-batch split over fsdp, frames over 4 shards) vs the single-device step on the whole batch of 8.
  """
  config = train_config()
  diffusion = create_diffusion(timestep_respacing='', learn_sigma=True, diffusion_steps=1000)  # as training
  optimizer = make_optimizer(config.optim)
  x0, _, y = inputs(jax.random.PRNGKey(5), BATCH)
  host_batch = {'video': x0, 'label': y}
  states = {d: create_train_state(models[d][2], optimizer, jax.random.PRNGKey(6)) for d in SHARDED_DESIGNS}
  t0 = time.time()
  refs = jax.jit(lambda ss, b: {d: train_step(ss[d], b, model=models[d][0], diffusion=diffusion,
                                              optimizer=optimizer, config=config) for d in ss})(states, host_batch)
  framed = {d: models[d][1] for d in SHARDED_DESIGNS}
  jax.block_until_ready(refs)
  results['timing_s']['train_steps_single_device'] = time.time() - t0
  # Gradient accumulation rides in the same program: FrameDiT-G with 4 micro-batches of 2.
  framed['accum'], states['accum'] = framed['framedit_g'], states['framedit_g']
  accum = train_config(grad_accum_steps=4)
  got, n_fsdp = sharded_steps(framed, states, host_batch, config, diffusion, optimizer, configs={'accum': accum})
  for d in SHARDED_DESIGNS:
    results['train_step'][d] = dict(compare_steps(*got[d], *refs[d], models[d][2], config.optim.b1),
                                    fsdp_sharded_params=n_fsdp[d], num_params=len(jax.tree.leaves(models[d][2])))
  d = 'framedit_g'
  results['grad_accum'] = dict(compare_steps(*got['accum'], *refs[d], models[d][2], config.optim.b1),
                               fsdp_sharded_params=n_fsdp['accum'], micro_batches=4, micro_batch_size=BATCH // 4)


def errors(results):
  """One-line errors for shapes frame parallelism cannot split."""
  mesh8 = make_mesh((1, 1, 8))
  out = {}
  bad_n = get_model('Latte-S/2', **dict(TINY, input_size=6))  # N = 9 tokens per frame, f = 8
  x = jnp.zeros((2, 8, 6, 6, 4))
  bad_t = get_model('Latte-S/2', **dict(TINY, num_frames=4))
  for key, model, xx in (('tokens', bad_n, x), ('frames', bad_t, jnp.zeros((2, 4, 8, 8, 4)))):
    try:
      fp.apply_frame_parallel(model, {}, xx, jnp.zeros((2,), jnp.int32), mesh=mesh8)
      out[key] = None
    except ValueError as e:
      out[key] = str(e)
  results['errors'] = out


def main(path):
  results = {'functions': {}, 'communication': {}, 'forward_frame8': {}, 'forward_222': {}, 'train_step': {}, 'timing_s': {}}
  start = time.time()
  errors(results)
  collective_functions(results)
  results['timing_s']['functions'] = time.time() - start
  t0 = time.time()
  models = models_and_params()
  results['timing_s']['models'] = time.time() - t0
  for part in (communication, forwards, train_steps):
    t0 = time.time()
    part(results, models)
    results['timing_s'][part.__name__] = time.time() - t0
  results['timing_s']['total'] = time.time() - start
  results['num_devices'] = jax.device_count()
  with open(path, 'w') as f:
    json.dump(results, f, indent=1)


if __name__ == '__main__':
  main(sys.argv[1])

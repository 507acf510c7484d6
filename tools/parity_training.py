"""Training parity: the official training loop and ours, side by side, from the same weights and draws (fp32, CPU).

    python tools/parity_training.py --official-src /tmp/official_framedit [--designs framedit_h,framedit_h_t2v]
        [--steps 30] [--depth 12] [--mutations all] [--out benchmarks/results/parity_training.jsonl]
        [--write-fixture]

For each design it builds the official model (initialised by its own constructor, `torch.manual_seed(0)`),
converts the initial state_dict with our converter, draws every random input once in numpy (batches from a fixed
pool of latent clips, timesteps, noise, class / caption drops) and feeds the same draws to
  * the official loop (tools/parity_training_official.py: `train.py` or `train_t2v_accelerate.py`, imported from
    `--official-src` at run time), in fp32 and again in fp64, and
  * our step (tools/parity_training_ours.py), once per mutation.
It compares the per-step losses, the final params, the EMA params and AdamW's moments (mu, nu).

Tolerance. Each quantity's error is scale-free: loss max_k |L - L_ref| / |L_ref|; params and EMA
||p - p_ref||_2 / ||p_ref - p_init||_2 (relative to the drift from the initial weights); moments
||m - m_ref||_2 / ||m_ref||_2.
The official loop's own float error is measured as the same norm between its fp32 and fp64 runs, after 1 step and
after N; the float floor between the two implementations is measured by running both forwards and backwards at
the same (official final) weights. The tolerance is `SAFETY` x the larger, per quantity (see `tolerance`). Ours passes when every quantity is within tolerance; a mutation is caught
when any quantity exceeds it.

Intentional differences (printed with the result): see `KNOWN_DIFFERENCES`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(1, os.path.join(os.path.dirname(__file__), '..'))
import parity_training_ours as ours  # pylint: disable=g-import-not-at-top,wrong-import-position

ROOT = os.path.join(os.path.dirname(__file__), '..')
FIXTURE = os.path.join(ROOT, 'tests', 'fixtures', 'parity_training', 'framedit_h_tiny.npz')
SAFETY = 10.0
QUANTITIES = ('loss', 'params', 'ema', 'mu', 'nu')

KNOWN_DIFFERENCES = (
    'sampling: our default sampler is DDPM-250 (configs/default.py sample.num_steps); the official sample.py '
    'respaces to DDPM-50 without saying so (num_sampling_steps is overridden); training is unaffected.',
    'T2V caption dropout: ours replaces a caption by the null ("") embedding with text.caption_dropout=0.1; the '
    'official train_t2v_accelerate.py has none. Here the drops are fed to the official model as data.',
    'T2V attention mask: the official training passes encoder_hidden_states only (padding tokens attended); ours '
    'passes the tokenizer mask. Here both sides get no mask.',
    'T2V trainable set: the official script always trains only the fused matrix-attention branch '
    '(freeze_framedit_h_for_training); our train_t2v trains every parameter (or LoRA adapters). Here our side is '
    'given the official mask.',
    'T2V gradient accumulation: the official train_steps counts micro-batches, so with accumulation 8 and '
    'ema_update_every 4 its EMA update (train_steps % 4 == 0) never coincides with a sync step; ours counts updates.',
    'T2V diffusion call: the official passes channel_first=True, which its own GaussianDiffusion.training_losses '
    'does not accept; the tool wraps the official model with the (B,F,C,H,W)<->(B,C,F,H,W) transpose instead.',
)

# Design: official builder args, our model, batch / data sizes, recipe (official config values, start_clip_iter and
# warm-up moved inside the run).
DESIGNS = {
    'framedit_h': dict(kind='class', name='FrameDiTH-S/64-256/2-concat', input_size=16, num_frames=4, num_classes=5,
                       batch=2, pool=4, recipe=dict(lr=1e-4, clip_max_norm=0.1, start_clip_iter=None)),
    'framedit_h_t2v': dict(kind='t2v', heads=6, head_dim=64, input_size=16, num_frames=4, caption_channels=64,
                           text_len=8, col_heads=16, qk_head=1, v_head=4, batch=2, pool=4,
                           recipe=dict(lr=3e-4, weight_decay=1e-4, warmup_steps=None, clip_max_norm=1.0,
                                       start_clip_iter=None, ema_update_every=4)),
}
# The CI fixture's run: tiny widths, and lr 1e-3 (10x the official 1e-4) so that 20 steps move the fp32 EMA
# (increments (1 - 0.9999) x drift) well above one float32 ulp of the weights.
TINY = dict(framedit_h=dict(depth=2, hidden_size=16, num_heads=2, input_size=8, qk_col_dim=8, v_col_dim=16,
                            num_col_heads=4, lr=1e-3))


def make_draws(design: dict, steps: int, seed: int = 0) -> dict:
  """Every random input of the run, drawn once: (N, B, ...) batches of a fixed clip pool, t, noise, drops."""
  rng = np.random.default_rng(seed)
  b, f, s, c = design['batch'], design['num_frames'], design['input_size'], 4
  pool = rng.standard_normal((design['pool'], f, s, s, c)).astype(np.float32)
  pool += np.linspace(-1, 1, f, dtype=np.float32)[None, :, None, None, None]  # a little temporal structure
  idx = rng.integers(design['pool'], size=(steps, b))
  d = dict(x0=pool[idx], idx=idx.astype(np.int32), t=rng.integers(0, 1000, size=(steps, b)).astype(np.int32),
           noise=rng.standard_normal((steps, b, f, s, s, c)).astype(np.float32),
           drop=rng.random((steps, b)) < 0.1)
  if design['kind'] == 'class':
    d['y'] = (idx % design['num_classes']).astype(np.int32)
  else:
    captions = rng.standard_normal((design['pool'], design['text_len'], design['caption_channels'])).astype(np.float32)
    null = rng.standard_normal((design['text_len'], design['caption_channels'])).astype(np.float32)
    d['text'] = np.where(d['drop'][:, :, None, None], null[None, None], captions[idx])
  return d


def recipe_for(design: dict, steps: int) -> dict:
  r = dict(design['recipe'])
  r['start_clip_iter'] = steps // 2
  if 'warmup_steps' in r:
    r['warmup_steps'] = steps // 3
  return r


# ------------------------------------------------------------------ models on both sides


def official_class_model(off, design: dict, depth: int | None, tiny: dict | None = None):
  import torch  # pylint: disable=g-import-not-at-top
  torch.manual_seed(0)
  kw = dict(input_size=design['input_size'], num_frames=design['num_frames'], num_classes=design['num_classes'],
            extras=2, learn_sigma=True, class_dropout_prob=0.1)
  if tiny:
    return off.framedit_h.FrameDiT_H(patch_size=2, fuse_mode='concat', depth=tiny['depth'],
                                     hidden_size=tiny['hidden_size'], num_row_heads=tiny['num_heads'],
                                     qk_col_dim=tiny['qk_col_dim'], v_col_dim=tiny['v_col_dim'],
                                     num_col_heads=tiny['num_col_heads'], **kw)
  if depth is None:
    return off.framedit_h.FrameDiTH_models[design['name']](**kw)
  # FrameDiTH_models['FrameDiTH-S/64-256/2-concat'] = FrameDiT_H_S_2(qk 64, v 256, 64 col heads, concat), depth set
  return off.framedit_h.FrameDiT_H(depth=depth, hidden_size=384, patch_size=2, num_row_heads=6, qk_col_dim=64,
                                   v_col_dim=256, num_col_heads=64, fuse_mode='concat', **kw)


def ours_class_model(design: dict, depth: int | None, tiny: dict | None = None):
  from framedit_jax.models import get_model  # pylint: disable=g-import-not-at-top
  o = dict(input_size=design['input_size'], num_frames=design['num_frames'], num_classes=design['num_classes'],
           class_dropout_prob=0.1, learn_sigma=True)
  if tiny:
    o.update(depth=tiny['depth'], hidden_size=tiny['hidden_size'], num_heads=tiny['num_heads'],
             qk_col_dim=tiny['qk_col_dim'], v_col_dim=tiny['v_col_dim'], num_col_heads=tiny['num_col_heads'])
  elif depth is not None:
    o['depth'] = depth
  return get_model(design['name'], **o), o


def _t2v_sizes(design: dict, depth: int | None) -> dict:
  return dict(in_channels=4, out_channels=8, num_layers=depth or 6, cross_attention_dim=design['heads'] *
              design['head_dim'], attention_bias=True, sample_size=design['input_size'], patch_size=2, norm_eps=1e-6,
              caption_channels=design['caption_channels'], video_length=design['num_frames'])


def official_t2v_model(off, design: dict, depth: int | None):
  import torch  # pylint: disable=g-import-not-at-top
  torch.manual_seed(0)
  n = (design['input_size'] // 2) ** 2
  return off.framedit_h_t2v.FrameDiT_H_T2V(
      col_dim=n, num_row_attn_heads=design['heads'], row_attn_head_dim=design['head_dim'], fuse_mode='concat',
      u_type='pure-softmax', attention_mode='math', use_bias=True, bias_type='col_row', attention_type='default',
      num_col_attn_heads=design['col_heads'], qk_col_attn_head_dim=design['qk_head'],
      v_col_attn_head_dim=design['v_head'], activation_fn='gelu-approximate', num_embeds_ada_norm=1000,
      norm_type='ada_norm_single', norm_elementwise_affine=False, **_t2v_sizes(design, depth))


def ours_t2v_model(design: dict, depth: int | None):
  from framedit_jax.models import t2v  # pylint: disable=g-import-not-at-top
  c = design['col_heads']
  return t2v.FrameDiTHT2V(num_attention_heads=design['heads'], attention_head_dim=design['head_dim'],
                          num_col_heads=c, qk_col_dim=c * design['qk_head'], v_col_dim=c * design['v_head'],
                          num_patches=(design['input_size'] // 2) ** 2, **_t2v_sizes(design, depth))


def state_dict_np(model) -> dict:
  return {k: v.detach().cpu().numpy().astype(np.float32) for k, v in model.state_dict().items()}


class Converter:
  """Official state_dict-named arrays (any subset of the trainable tensors) -> our param tree, by our converter."""

  def __init__(self, design: dict, init_sd: dict, module, overrides: dict | None, trainable: set[str]):
    self.design, self.init_sd, self.module, self.overrides, self.trainable = design, init_sd, module, overrides, trainable

  def __call__(self, arrays: dict, fill: str = 'init'):
    """`fill`: what the tensors not in `arrays` hold ('init' weights or 'zeros')."""
    sd = {k: (v if fill == 'init' or k not in self.trainable else np.zeros_like(v)) for k, v in self.init_sd.items()}
    sd.update({k: np.asarray(v, np.float32) for k, v in arrays.items()})
    if self.design['kind'] == 'class':
      from framedit_jax.convert.official import convert_state_dict  # pylint: disable=g-import-not-at-top
      return convert_state_dict(sd, self.design['name'], check_embeddings=False, **self.overrides)
    from framedit_jax.convert.t2v import convert_t2v_state_dict, sample_inputs  # pylint: disable=g-import-not-at-top
    return convert_t2v_state_dict(sd, self.module, sample_inputs(self.module))

  def mask(self):
    import jax  # pylint: disable=g-import-not-at-top
    flags = {k: np.full(v.shape, float(k in self.trainable), np.float32) for k, v in self.init_sd.items()}
    return jax.tree.map(lambda m: bool(np.all(m == 1.0)), self(flags))


# ------------------------------------------------------------------ comparison


def _flat(tree) -> np.ndarray:
  import jax  # pylint: disable=g-import-not-at-top
  return np.concatenate([np.asarray(x, np.float64).ravel() for x in jax.tree.leaves(tree)])


def errors(run, ref, init) -> dict:
  """Scale-free errors of a run (`losses` + trees params/ema/mu/nu) against a reference, per quantity.

  loss: max_k |L_k - Lref_k| / |Lref_k|. params, ema: ||p - pref||_2 / ||pref - p_init||_2 (relative to the drift
  from the initial weights). mu, nu: ||m - mref||_2 / ||mref||_2. L2 norms over all elements, so float rounding
  (uncorrelated across elements) averages out while a systematic change (a mutation) does not.
  """
  p0 = _flat(init)
  l2 = lambda v: float(np.sqrt(np.sum(v * v)))
  out = dict(loss=float(np.max(np.abs(np.asarray(run['losses']) - ref['losses']) / np.abs(ref['losses']))))
  for q in ('params', 'ema'):
    r = _flat(ref[q])
    out[q] = l2(_flat(run[q]) - r) / max(l2(r - p0), 1e-30)
  for q in ('mu', 'nu'):
    r = _flat(ref[q])
    out[q] = l2(_flat(run[q]) - r) / max(l2(r), 1e-30)
  return out


def tolerance(en: dict, floor: dict, ours_self: dict) -> dict:
  """SAFETY x the largest of three measured float errors, per quantity.

  `en`: the official loop's fp32-vs-fp64 error after the same N steps. `ours_self`: how far our own N-step run
  moves when every initial weight and AdamW's b1, b2 are nudged by one float32 ulp (our loop's amplification of
  rounding). If both
  sides only round, |ours - official| <= |ours - exact| + |official - exact|, about twice the larger of these.
  `floor`: how far the two float32 implementations disagree at identical weights (loss over every step's draws;
  relative L2 of the gradient at the last step, used for params, EMA and mu, twice it for nu ~ g^2); no loop
  detail can cause it. SAFETY (10) leaves a factor >= 5 over the triangle bound.
  """
  return {q: SAFETY * max(en[q], floor[q], ours_self[q]) for q in QUANTITIES}


def _as_tree_run(result: dict, convert, prefix: str = '') -> dict:
  r = dict(losses=result[prefix + 'losses'] if prefix + 'losses' in result else result['losses'])
  for q in ('params', 'ema'):
    r[q] = convert(result[q], 'init')
  for q in ('mu', 'nu'):
    r[q] = convert(result[q], 'zeros')
  return r


def _select(tree, mask):
  import jax  # pylint: disable=g-import-not-at-top
  return [x for x, m in zip(jax.tree.leaves(tree), jax.tree.leaves(mask)) if m]


def run_design(args, key: str, out_rows: list) -> bool:
  import jax  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  import parity_training_official as official  # pylint: disable=g-import-not-at-top
  off = official.import_official(args.official_src)
  tiny = TINY.get(key) if args.tiny else None
  design = dict(DESIGNS[key], input_size=tiny['input_size']) if tiny else DESIGNS[key]
  steps = args.steps
  recipe = recipe_for(design, steps)
  if tiny:
    recipe['lr'] = tiny['lr']
  draws = make_draws(design, steps)
  if design['kind'] == 'class':
    tmodel = official_class_model(off, design, args.depth, tiny)
    module, overrides = ours_class_model(design, args.depth, tiny)
    loop = official.class_loop
  else:
    tmodel = official_t2v_model(off, design, args.depth)
    module, overrides = ours_t2v_model(design, args.depth), None
    loop = official.t2v_loop
  init_sd = state_dict_np(tmodel)
  t0 = time.time()
  res = {}
  for name, dtype, n in (('f32_1', torch.float32, 1), ('f64_1', torch.float64, 1), ('f32', torch.float32, steps),
                         ('f64', torch.float64, steps)):
    model = official_class_model(off, design, args.depth, tiny) if design['kind'] == 'class' else official_t2v_model(
        off, design, args.depth)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in init_sd.items()})
    res[name] = loop(off, model, {k: v[:n] for k, v in draws.items()}, recipe, dtype)
    print(f'{key}: official {name} ({n} steps) {time.time() - t0:.0f}s', flush=True)
  trainable = set(res['f32']['params'])
  conv = Converter(design, init_sd, module, overrides, trainable)
  mask = conv.mask() if design['kind'] == 't2v' else None
  init = conv({}, 'init')
  sel = (lambda t: _select(t, mask)) if mask is not None else (lambda t: t)
  tree = {name: {q: sel(v) if q != 'losses' else v for q, v in _as_tree_run(r, conv).items()}
          for name, r in res.items()}
  e1, en = errors(tree['f32_1'], tree['f64_1'], sel(init)), errors(tree['f32'], tree['f64'], sel(init))
  # Float floor between the implementations: both forwards/backwards at the official fp32 final weights.
  model = official_class_model(off, design, args.depth, tiny) if design['kind'] == 'class' else official_t2v_model(
      off, design, args.depth)
  model.load_state_dict({k: torch.from_numpy(np.asarray(v, np.float32))
                         for k, v in {**init_sd, **res['f32']['params']}.items()})
  p_off = official.probe(off, model, draws, design['kind'])
  final = conv(res['f32']['params'], 'init')
  l_ours, g_ours = ours.probe(module, final, draws, design['kind'])
  g_off = conv({k: v for k, v in p_off['grads'].items() if k in trainable}, 'zeros')
  f_loss = float(np.max(np.abs(l_ours - p_off['losses']) / np.abs(p_off['losses'])))
  gd, go = _flat(sel(g_ours)) - _flat(sel(g_off)), _flat(sel(g_off))
  f_grad = float(np.sqrt(np.sum(gd * gd) / np.sum(go * go)))
  floor = dict(loss=f_loss, params=f_grad, ema=f_grad, mu=f_grad, nu=2 * f_grad)
  # Our own loop's sensitivity to float rounding: rerun ours from the initial weights moved by one ulp each.
  base = run_ours(design, module, init, mask, draws, recipe, 'none')
  rng = np.random.default_rng(1)
  nudged = jax.tree.map(lambda v: np.asarray(v, np.float32) * (1 + np.float32(2.0 ** -23) * rng.choice(
      np.array([-1, 1], np.float32), size=np.shape(v))), init)
  # ... and AdamW's b1, b2 moved by one float32 ulp (0.9 and 0.999 are not float32 numbers: each side rounds them
  # its own way, torch's fp32 exp_avg_sq uses 1 - beta2 in double beside beta2 in float32).
  up = lambda b: float(np.nextafter(np.float32(b), np.float32(1)))
  es = errors(run_ours(design, module, nudged, mask, draws, dict(recipe, b1=up(0.9), b2=up(0.999)), 'none'), base,
              sel(init))
  tol = tolerance(en, floor, es)
  from benchmarks.common import git_commit, machine_info  # pylint: disable=g-import-not-at-top
  header = dict(tool='parity_training', commit=git_commit(dirty=True), machine=machine_info(), design=key, steps=steps, depth=args.depth or 'full', recipe=recipe,
                official_float_error_step1=e1, official_float_error_stepN=en, implementation_float_floor=floor,
                ours_ulp_sensitivity_stepN=es,
                tolerance=tol,
                official_losses=[round(float(x), 6) for x in res['f32']['losses']])
  print(f'{key}: official fp32-vs-fp64 error step 1 {fmt(e1)}\n{key}: official fp32-vs-fp64 error step {steps} '
        f'{fmt(en)}\n{key}: ours-vs-official float floor at equal weights {fmt(floor)}\n{key}: ours, 1-ulp nudged '
        f'initial weights and b1, b2, step {steps} {fmt(es)}\n{key}: tolerance {fmt(tol)}')
  ok = True
  for mutation in args.mutations:
    mine = base if mutation == 'none' else run_ours(design, module, init, mask, draws, recipe, mutation)
    e = errors(mine, tree['f32'], sel(init))
    over = [q for q in QUANTITIES if e[q] > tol[q]]
    verdict = ('agree' if not over else 'DIVERGE') if mutation == 'none' else ('caught' if over else 'MISSED')
    ok &= verdict in ('agree', 'caught')
    loss_err = np.abs(mine['losses'] - res['f32']['losses']) / np.abs(res['f32']['losses'])
    row = dict(header, mutation=mutation, error=e, exceeds=over, verdict=verdict,
               loss_error_per_step=[float(f'{x:.3g}') for x in loss_err],
               ratio_to_tolerance={q: e[q] / tol[q] for q in QUANTITIES}, seconds=round(time.time() - t0, 1))
    out_rows.append(row)
    print(f'{key}: ours[{mutation:16s}] {fmt(e)} -> {verdict} {over if over else ""}', flush=True)
    if args.verbose:
      print('  loss error per step', ' '.join(f'{x:.1e}' for x in loss_err))
  if args.write_fixture:
    write_fixture(FIXTURE, dict(design=key, tiny=tiny, steps=steps, recipe=recipe, tolerance=tol,
                                official_float_error_stepN=en, ours_ulp_sensitivity_stepN=es, floor=floor),
                  init_sd, draws, res['f32'])
  return ok


def run_ours(design, module, init, mask, draws, recipe, mutation) -> dict:
  """Our run as {'losses', 'params', 'ema', 'mu', 'nu'} (T2V: the trainable leaves in the full mask's order)."""
  if design['kind'] == 'class':
    r = ours.class_run(module, init, draws, recipe, mutation)
    return dict(losses=r.losses, params=r.params, ema=r.ema, mu=r.mu, nu=r.nu)
  r = ours.t2v_run(module, init, mask, draws, recipe, mutation)
  return dict(losses=r.losses, **{q: _leaves_by_mask(getattr(r, q), mask) for q in ('params', 'ema', 'mu', 'nu')})


def _leaves_by_mask(subtree, mask):
  """Leaves of our trainable-only flat tree in the order of the full mask's True leaves."""
  import flax  # pylint: disable=g-import-not-at-top
  flat_mask = flax.traverse_util.flatten_dict(mask)
  flat = flax.traverse_util.flatten_dict(subtree)
  return [flat[k] for k, m in sorted(flat_mask.items()) if m]


def write_fixture(path: str, meta: dict, init_sd: dict, draws: dict, official: dict) -> None:
  """The CI fixture: initial weights, draws, the official fp32 run's losses/params/EMA/moments and the tolerance."""
  arrays = {f'init|{k}': v for k, v in init_sd.items()}
  arrays.update({f'draws|{k}': v for k, v in draws.items() if k != 'x0'})
  pool = np.zeros((int(draws['idx'].max()) + 1,) + draws['x0'].shape[2:], np.float32)  # x0 = pool[idx]
  pool[draws['idx']] = draws['x0']
  arrays['draws|pool'] = pool
  arrays['official|losses'] = np.asarray(official['losses'], np.float64)
  for q in ('params', 'ema', 'mu', 'nu'):
    arrays.update({f'official|{q}|{k}': np.asarray(v, np.float32) for k, v in official[q].items()})
  arrays['__meta__'] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  np.savez_compressed(path, **arrays)
  print(f'wrote {os.path.normpath(path)} ({os.path.getsize(path) / 1024:.0f} KiB)')


def read_fixture(path: str) -> tuple[dict, dict, dict, dict]:
  """(meta, init state_dict, draws, official {'losses', 'params', 'ema', 'mu', 'nu'}) of `write_fixture`."""
  z = np.load(path)
  meta = json.loads(bytes(z['__meta__']).decode())
  pick = lambda prefix: {k[len(prefix):]: z[k] for k in z.files if k.startswith(prefix)}
  official = {q: pick(f'official|{q}|') for q in ('params', 'ema', 'mu', 'nu')}
  official['losses'] = z['official|losses']
  draws = pick('draws|')
  draws['x0'] = draws.pop('pool')[draws['idx']]
  return meta, pick('init|'), draws, official


def fmt(d: dict) -> str:
  return ' '.join(f'{q} {d[q]:.2e}' for q in QUANTITIES)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--official-src', required=True, help='root of the official FrameDiT checkout')
  parser.add_argument('--designs', default=','.join(DESIGNS), help='comma-separated subset of ' + ','.join(DESIGNS))
  parser.add_argument('--steps', type=int, default=30)
  parser.add_argument('--depth', type=int, default=None, help='reduced depth (default: the full S depth)')
  parser.add_argument('--mutations', default='all', help='comma-separated subset of ' + ','.join(ours.MUTATIONS))
  parser.add_argument('--verbose', action='store_true', help='print the per-step loss errors')
  parser.add_argument('--out', default='', help='append the result rows (JSON lines) to this file')
  parser.add_argument('--tiny', action='store_true', help='the tiny config of the CI fixture (TINY)')
  parser.add_argument('--write-fixture', action='store_true',
                      help=f'write {os.path.normpath(FIXTURE)} (with --tiny --designs framedit_h)')
  args = parser.parse_args(argv)
  if args.write_fixture and (not args.tiny or args.designs != 'framedit_h'):
    parser.error('--write-fixture needs --tiny --designs framedit_h')
  args.mutations = list(ours.MUTATIONS) if args.mutations == 'all' else args.mutations.split(',')
  for m in args.mutations:
    if m not in ours.MUTATIONS:
      parser.error(f'unknown mutation {m!r}; choose from {", ".join(ours.MUTATIONS)}')
  for line in KNOWN_DIFFERENCES:
    print('intentional difference:', line)
  rows, ok = [], True
  for key in args.designs.split(','):
    if key not in DESIGNS:
      parser.error(f'unknown design {key!r}; choose from {", ".join(DESIGNS)}')
    ok &= run_design(args, key, rows)
  if args.out:
    from benchmarks.common import emit  # pylint: disable=g-import-not-at-top
    for row in rows:
      emit(row, args.out)
  return 0 if ok else 1


if __name__ == '__main__':
  sys.exit(main())

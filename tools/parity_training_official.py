"""The official side of tools/parity_training.py: the official training loops, run with injected draws.

Nothing of the official code is copied here: `import_official(src)` puts the checkout on `sys.path` and imports
its `diffusion` package, `utils.update_ema` / `utils.requires_grad` and `models.model_utils` at run time.

`class_loop` is the loop of the official `train.py`; `t2v_loop` the loop of `train_t2v_accelerate.py`. Both
take the draws (batches, timesteps, noise, class or caption drops) from the caller instead of torch's RNG, and
run on one process without gradient accumulation (where accelerate's `clip_grad_norm_` is
`torch.nn.utils.clip_grad_norm_` and every micro-step is a sync step).
"""

from __future__ import annotations

import copy
import os
import sys
import types

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from parity_official import install_timm_stub  # pylint: disable=g-import-not-at-top,wrong-import-position


def import_official(src: str) -> types.SimpleNamespace:
  """Imports the official `diffusion`, `utils` and `models.model_utils` from the checkout at `src`."""
  if not os.path.exists(os.path.join(src, 'train.py')):
    raise FileNotFoundError(f'--official-src: {src}/train.py not found; pass the FrameDiT checkout root.')
  import diffusers.optimization  # pylint: disable=g-import-not-at-top,unused-import  (before the timm stub: it probes timm)
  install_timm_stub()
  if 'omegaconf' not in sys.modules:  # official utils.py imports OmegaConf only for its CLI parser
    try:
      import omegaconf  # pylint: disable=g-import-not-at-top,unused-import
    except ImportError:
      stub = types.ModuleType('omegaconf')
      stub.OmegaConf = None
      sys.modules['omegaconf'] = stub
  if src not in sys.path:
    sys.path.insert(0, src)
  import diffusion  # pylint: disable=g-import-not-at-top
  import utils  # pylint: disable=g-import-not-at-top
  from models import framedit_h, framedit_h_t2v, model_utils  # pylint: disable=g-import-not-at-top
  grid_fn = framedit_h_t2v.get_1d_sincos_pos_embed_from_grid  # newer diffusers return a tensor; numpy wanted
  if not getattr(grid_fn, '_numpy_wrapped', False):
    wrapped = lambda d, pos: np.asarray(grid_fn(d, pos))
    wrapped._numpy_wrapped = True
    framedit_h_t2v.get_1d_sincos_pos_embed_from_grid = wrapped
  from diffusers.optimization import get_scheduler  # pylint: disable=g-import-not-at-top
  return types.SimpleNamespace(create_diffusion=diffusion.create_diffusion, update_ema=utils.update_ema,
                               requires_grad=utils.requires_grad, framedit_h=framedit_h,
                               framedit_h_t2v=framedit_h_t2v, model_utils=model_utils, get_scheduler=get_scheduler)


def to_dtype(model, dtype):
  """`model.to(dtype)`; for float64 also casts every layer's floating inputs to its weight's dtype (forward
  pre-hooks), since the official timestep embedding builds its sinusoid in float32 whatever the weights are."""
  import torch  # pylint: disable=g-import-not-at-top
  model = model.to(dtype)
  if dtype == torch.float64:
    cast = lambda a: a.to(dtype) if torch.is_tensor(a) and a.is_floating_point() else a
    for m in model.modules():
      if isinstance(getattr(m, 'weight', None), torch.Tensor):
        m.register_forward_pre_hook(lambda mod, args: tuple(cast(a) for a in args))
  return model


def _state(model, opt, ema) -> dict:
  """float64 numpy copies of the params, EMA and AdamW moments (exp_avg, exp_avg_sq) by state_dict name."""
  names = {id(p): n for n, p in model.named_parameters()}
  to_np = lambda t: t.detach().cpu().double().numpy()
  params = {n: to_np(p) for n, p in model.named_parameters() if p.requires_grad}
  mu, nu = {}, {}
  for p, s in opt.state.items():
    mu[names[id(p)]], nu[names[id(p)]] = to_np(s['exp_avg']), to_np(s['exp_avg_sq'])
  ema_sd = {n: to_np(p) for n, p in ema.named_parameters()}
  return dict(params=params, ema={n: ema_sd[n] for n in params}, mu=mu, nu=nu)


def class_loop(off, model, draws: dict, recipe: dict, dtype) -> dict:
  """The official `train.py` loop (class-conditional, extras=2) over the injected draws.

  train.py: `create_diffusion(timestep_respacing=None)` (1000 steps, linear betas, learned sigma, MSE+VB);
  `torch.optim.AdamW(model.parameters(), lr, weight_decay=0)` (torch defaults betas (0.9, 0.999), eps 1e-8);
  diffusers `get_scheduler('constant')`; per step: loss.backward(), `clip_grad_norm_(params, clip_max_norm if
  train_steps >= start_clip_iter else inf)`, optimizer.step(), lr_scheduler.step(), zero_grad(),
  `train_steps += 1`, then `update_ema(ema, model)` (decay 0.9999, after the optimizer step). Class dropout is
  the model's `LabelEmbedder.token_drop` in train mode; here it is fed `force_drop_ids` from `draws['drop']`.

  Args:
    off: `import_official(...)`.
    model: the official FrameDiT module holding the initial weights.
    draws: x0 (N, B, T, H, W, C), t (N, B), noise like x0, y (N, B), drop (N, B) bool.
    recipe: lr, clip_max_norm, start_clip_iter.
    dtype: torch.float32 or torch.float64.

  Returns:
    {'losses': (N,), 'grad_norms': (N,), 'params', 'ema', 'mu', 'nu'} (float64 numpy, state_dict names).
  """
  import torch  # pylint: disable=g-import-not-at-top
  model = to_dtype(model, dtype).train()
  ema = copy.deepcopy(model)
  off.update_ema(ema, model, decay=0)
  off.requires_grad(ema, False)
  ema.eval()
  diffusion = off.create_diffusion(timestep_respacing=None)
  opt = torch.optim.AdamW(model.parameters(), lr=recipe['lr'], weight_decay=0)
  n = len(draws['t'])
  sched = off.get_scheduler('constant', optimizer=opt, num_warmup_steps=0, num_training_steps=n)
  force = {}
  embed = model.y_embedder.forward
  model.y_embedder.forward = lambda labels, train, force_drop_ids=None: embed(labels, train, force['ids'])
  losses, norms, train_steps = [], [], 0
  for k in range(n):
    x = torch.from_numpy(draws['x0'][k]).permute(0, 1, 4, 2, 3).to(dtype)  # (B, T, H, W, C) -> (B, F, C, H, W)
    noise = torch.from_numpy(draws['noise'][k]).permute(0, 1, 4, 2, 3).to(dtype)
    t = torch.from_numpy(draws['t'][k].astype(np.int64))
    force['ids'] = torch.from_numpy(draws['drop'][k].astype(np.int64))
    loss_dict = diffusion.training_losses(model, x, t, dict(y=torch.from_numpy(draws['y'][k].astype(np.int64))),
                                          noise=noise)
    loss = loss_dict['loss'].mean()
    loss.backward()
    max_norm = recipe['clip_max_norm'] if train_steps >= recipe['start_clip_iter'] else float('inf')
    norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)))
    opt.step()
    sched.step()
    opt.zero_grad()
    losses.append(float(loss))
    train_steps += 1
    off.update_ema(ema, model)
  model.y_embedder.forward = embed
  return dict(losses=np.array(losses), grad_norms=np.array(norms), **_state(model, opt, ema))


def t2v_loop(off, model, draws: dict, recipe: dict, dtype) -> dict:
  """The official `train_t2v_accelerate.py` loop (FrameDiT-H-T2V) over the injected draws.

  train_t2v_accelerate.py: `freeze_framedit_h_for_training` (only the fused matrix-attention branch trains: its
  `matrix_attention`, `norm_local`, `norm_global`, `output_linear`, `content_gate`, `alpha`, `gamma_*`); EMA =
  deepcopy + `update_ema(decay=0)`; `AdamW([trainable], lr, weight_decay=args.weight_decay)`; diffusers
  `get_scheduler('constant_with_warmup', num_warmup_steps)`; per step: backward, `clip_grad_norm_(params, inf if
  train_steps < start_clip_iter else clip_max_norm)`, step, scheduler step, zero_grad, then `if train_steps %
  ema_update_every == 0: update_ema(ema, model, decay=0.9999 ** ema_update_every)`, then `train_steps += 1`.
  The model gets `encoder_hidden_states` only (no attention mask). Two departures, both forced: the official
  call passes `channel_first=True`, which the official `GaussianDiffusion.training_losses` does not accept, so the
  model is wrapped with the (B, F, C, H, W) <-> (B, C, F, H, W) transpose that flag names; and the official
  script has no caption dropout, so the dropped captions (`draws['drop']`) arrive as data (the null embedding).

  Args:
    draws: x0, t, noise as in `class_loop`; text (N, B, L, C_text) with the drops already applied.
    recipe: lr, weight_decay, warmup_steps, clip_max_norm, start_clip_iter, ema_update_every.

  Returns:
    as `class_loop`; params/ema/mu/nu hold the trainable tensors only.
  """
  import torch  # pylint: disable=g-import-not-at-top
  model = to_dtype(model, dtype)
  off.model_utils.freeze_framedit_h_for_training(model, None)
  ema = copy.deepcopy(model)
  off.update_ema(ema, model, decay=0)
  off.requires_grad(ema, False)
  ema.eval()
  model.train()
  diffusion = off.create_diffusion(timestep_respacing=None)
  opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=recipe['lr'],
                          weight_decay=recipe['weight_decay'])
  n = len(draws['t'])
  sched = off.get_scheduler('constant_with_warmup', optimizer=opt, num_warmup_steps=recipe['warmup_steps'],
                            num_training_steps=n)
  every = recipe['ema_update_every']

  def channel_first(x, t, encoder_hidden_states):
    out = model(x.permute(0, 2, 1, 3, 4), timestep=t, encoder_hidden_states=encoder_hidden_states,
                return_dict=False)[0]
    return out.permute(0, 2, 1, 3, 4)

  losses, norms, train_steps = [], [], 0
  for k in range(n):
    x = torch.from_numpy(draws['x0'][k]).permute(0, 1, 4, 2, 3).to(dtype)
    noise = torch.from_numpy(draws['noise'][k]).permute(0, 1, 4, 2, 3).to(dtype)
    t = torch.from_numpy(draws['t'][k].astype(np.int64))
    text = torch.from_numpy(draws['text'][k]).to(dtype)
    loss = diffusion.training_losses(channel_first, x, t, {'encoder_hidden_states': text}, noise=noise)['loss'].mean()
    loss.backward()
    max_norm = float('inf') if train_steps < recipe['start_clip_iter'] else recipe['clip_max_norm']
    norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)))
    opt.step()
    sched.step()
    opt.zero_grad()
    if train_steps % every == 0:
      off.update_ema(ema, model, decay=0.9999 ** every)
    losses.append(float(loss))
    train_steps += 1
  return dict(losses=np.array(losses), grad_norms=np.array(norms), **_state(model, opt, ema))


def probe(off, model, draws: dict, kind: str) -> dict:
  """The official loss at every step's draws and the gradient at the last one, at the model's current weights.

  With the same weights on both sides this measures how far the two implementations' float32 forward and backward
  disagree, which no training-loop detail can cause (it sets the floor of the tolerance).
  """
  import torch  # pylint: disable=g-import-not-at-top
  diffusion = off.create_diffusion(timestep_respacing=None)
  model = model.float().train()
  losses, grads = [], {}
  n = len(draws['t'])
  for k in range(n):
    x = torch.from_numpy(draws['x0'][k]).permute(0, 1, 4, 2, 3)
    noise = torch.from_numpy(draws['noise'][k]).permute(0, 1, 4, 2, 3)
    t = torch.from_numpy(draws['t'][k].astype(np.int64))
    if kind == 'class':
      embed = model.y_embedder.forward
      ids = torch.from_numpy(draws['drop'][k].astype(np.int64))
      model.y_embedder.forward = lambda labels, train, force_drop_ids=None, ids=ids: embed(labels, train, ids)
      fn, kwargs = model, dict(y=torch.from_numpy(draws['y'][k].astype(np.int64)))
    else:
      fn = lambda x, t, encoder_hidden_states: model(x.permute(0, 2, 1, 3, 4), timestep=t,
                                                      encoder_hidden_states=encoder_hidden_states,
                                                      return_dict=False)[0].permute(0, 2, 1, 3, 4)
      kwargs = {'encoder_hidden_states': torch.from_numpy(draws['text'][k])}
    loss = diffusion.training_losses(fn, x, t, kwargs, noise=noise)['loss'].mean()
    if k == n - 1:
      loss.backward()
      grads = {name: p.grad.detach().double().numpy() for name, p in model.named_parameters() if p.grad is not None}
      model.zero_grad()
    losses.append(float(loss.detach()))
    if kind == 'class':
      model.y_embedder.forward = embed
  return dict(losses=np.array(losses), grads=grads)

"""DDPM ancestral and DDIM samplers as one `jax.lax.scan`.

Functions here take the diffusion object first and are bound as methods of `GaussianDiffusion`
(official counterparts: `p_sample`, `p_sample_loop`, `ddim_sample`, `ddim_sample_loop` in gaussian_diffusion.py).

Randomness: `key` is split into (key_init, key_steps); x_K = normal(key_init) unless `noise` is given, and the
step at respaced index i draws normal(fold_in(key_steps, i)), so a fixed key gives a reproducible sample (and a
step-by-step loop over `p_sample` / `ddim_sample` with the same keys, as tests/ has, the same numbers).

Memory: the scan carries only x (its outputs are empty unless return_intermediates=True), so memory does not
grow with the number of steps. Call the loops inside `jax.jit` (params passed in as arguments,
`framedit_jax.train.generate.Sampler`) to compile the whole sampler once.
"""

import functools

import jax
import jax.numpy as jnp


def _expand(mask, x):
  return mask.reshape(mask.shape + (1,) * (x.ndim - mask.ndim))


def p_sample(diffusion, model_fn, x, t, key, *, model_kwargs=None, clip_denoised=False, denoised_fn=None):
  """One DDPM ancestral step x_t -> x_{t-1} = μ_θ + σ_θ z, with no noise at t = 0.

  Args:
    diffusion: the GaussianDiffusion.
    model_fn: (x (B, ..., C), t (B,) original steps, **model_kwargs) -> (B, ..., 2C or C).
    x: (B, ..., C) current x_t.
    t: (B,) int respaced indices.
    key: PRNG key for z.
    model_kwargs: extra model arguments.
    clip_denoised: clip x̂_0 to [-1, 1] (False for latents).
    denoised_fn: optional transform of x̂_0.

  Returns:
    dict 'sample' (B, ..., C) and 'pred_xstart' (B, ..., C).
  """
  model_output = diffusion.apply_model(model_fn, x, t, model_kwargs)
  out = diffusion.p_mean_variance(model_output, x, t, clip_denoised=clip_denoised, denoised_fn=denoised_fn)
  noise = jax.random.normal(key, x.shape, x.dtype)
  nonzero = _expand((jnp.asarray(t) != 0).astype(x.dtype), x)
  sample = out['mean'] + nonzero * jnp.exp(0.5 * out['log_variance']) * noise
  return {'sample': sample, 'pred_xstart': out['pred_xstart']}


def ddim_sample(diffusion, model_fn, x, t, key, *, eta=0.0, model_kwargs=None, clip_denoised=False,
                denoised_fn=None):
  """One DDIM step (Song et al. eq. 12): x_{t-1} = √ᾱ_{t-1} x̂_0 + √(1 − ᾱ_{t-1} − σ²) ε̂ + σ z.

  σ = η √((1 − ᾱ_{t-1})/(1 − ᾱ_t)) √(1 − ᾱ_t/ᾱ_{t-1}); ε̂ is re-derived from x̂_0 (so any `predict` works);
  no noise at t = 0. Arguments as `p_sample`, plus eta ≥ 0 (0 = deterministic).
  """
  model_output = diffusion.apply_model(model_fn, x, t, model_kwargs)
  out = diffusion.p_mean_variance(model_output, x, t, clip_denoised=clip_denoised, denoised_fn=denoised_fn)
  eps = diffusion.predict_eps_from_xstart(x, t, out['pred_xstart'])
  alpha_bar = diffusion._extract(diffusion.alphas_cumprod, t, x)
  alpha_bar_prev = diffusion._extract(diffusion.alphas_cumprod_prev, t, x)
  sigma = eta * jnp.sqrt((1.0 - alpha_bar_prev) / (1.0 - alpha_bar)) * jnp.sqrt(1.0 - alpha_bar / alpha_bar_prev)
  mean = out['pred_xstart'] * jnp.sqrt(alpha_bar_prev) + jnp.sqrt(1.0 - alpha_bar_prev - sigma ** 2) * eps
  nonzero = _expand((jnp.asarray(t) != 0).astype(x.dtype), x)
  sample = mean + nonzero * sigma * jax.random.normal(key, x.shape, x.dtype)
  return {'sample': sample, 'pred_xstart': out['pred_xstart']}


# ---------------------------------------------------------------------------- progress reporting


def _print_progress(done, total):
  print(f'sampling: step {int(done)}/{total}', flush=True)


def _report(done, total, every, fn):
  """Calls fn(done, total) on the host every `every` steps and at the end, without leaving jit."""
  cb = functools.partial(lambda d, fn_, tot: fn_(int(d), tot), fn_=fn, tot=total)
  jax.lax.cond((done % every == 0) | (done == total),
               lambda d: jax.debug.callback(cb, d), lambda d: None, done)


def _progress_fn(progress):
  if progress is True:
    return _print_progress
  if callable(progress):
    return progress
  return None


# ---------------------------------------------------------------------------- loops


def _init_x(shape, key, noise, dtype):
  key_init, key_steps = jax.random.split(key)
  if noise is None:
    x = jax.random.normal(key_init, tuple(shape), dtype)
  else:
    if tuple(noise.shape) != tuple(shape):
      raise ValueError(f'sampler: noise shape {tuple(noise.shape)} != shape {tuple(shape)}.')
    x = jnp.asarray(noise)
  return x, key_steps


def _scan_loop(diffusion, step_fn, shape, key, noise, dtype, progress, progress_every, return_intermediates):
  x, key_steps = _init_x(shape, key, noise, dtype)
  total = diffusion.num_timesteps
  fn = _progress_fn(progress)
  every = progress_every or max(1, total // 10)

  def body(x, i):
    t = jnp.full((x.shape[0],), i, jnp.int32)
    x = step_fn(x, t, jax.random.fold_in(key_steps, i))
    if fn is not None:
      _report(total - i, total, every, fn)
    return x, (x if return_intermediates else None)

  x, traj = jax.lax.scan(body, x, jnp.arange(total - 1, -1, -1, dtype=jnp.int32))
  return (x, traj) if return_intermediates else x


def p_sample_loop(diffusion, model_fn, shape, key, *, model_kwargs=None, noise=None, progress=False,
                  progress_every=None, clip_denoised=False, denoised_fn=None, dtype=jnp.float32,
                  return_intermediates=False):
  """DDPM ancestral sampling over all (respaced) steps as one lax.scan.

  Args:
    diffusion: the GaussianDiffusion (e.g. create_diffusion("250")).
    model_fn: (x (B, ..., C), t (B,) original steps, **model_kwargs) -> (B, ..., 2C or C). Classifier-free
      guidance belongs inside model_fn (see `guidance.guided_model_fn`).
    shape: output shape (B, ..., C), e.g. (B, T, H, W, C).
    key: PRNG key (fixed key -> same sample).
    model_kwargs: extra model arguments (e.g. {'y': labels}).
    noise: optional x_K of `shape` (then key only drives the per-step noise).
    progress: False, True (print 'sampling: step k/K' from a host callback), or a callable(done, total).
    progress_every: report period in steps (default K // 10).
    clip_denoised: clip x̂_0 to [-1, 1] (False for latents).
    denoised_fn: optional transform of x̂_0.
    dtype: dtype of the initial noise when `noise` is None.
    return_intermediates: also return the (K, B, ...) stack of x after every step (memory grows with K;
      for tests).

  Returns:
    x_0 of `shape` (and the trajectory if return_intermediates).
  """
  def step_fn(x, t, k):
    return p_sample(diffusion, model_fn, x, t, k, model_kwargs=model_kwargs, clip_denoised=clip_denoised,
                    denoised_fn=denoised_fn)['sample']
  return _scan_loop(diffusion, step_fn, shape, key, noise, dtype, progress, progress_every, return_intermediates)


def ddim_sample_loop(diffusion, model_fn, shape, key, *, eta=0.0, model_kwargs=None, noise=None, progress=False,
                     progress_every=None, clip_denoised=False, denoised_fn=None, dtype=jnp.float32,
                     return_intermediates=False):
  """DDIM sampling (η configurable, default 0) over all (respaced) steps as one lax.scan.

  Use with create_diffusion("ddim50") or any respacing. Arguments and return as `p_sample_loop`, plus eta.
  """
  def step_fn(x, t, k):
    return ddim_sample(diffusion, model_fn, x, t, k, eta=eta, model_kwargs=model_kwargs,
                       clip_denoised=clip_denoised, denoised_fn=denoised_fn)['sample']
  return _scan_loop(diffusion, step_fn, shape, key, noise, dtype, progress, progress_every, return_intermediates)

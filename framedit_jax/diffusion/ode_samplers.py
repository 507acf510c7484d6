"""Euler and DPM-Solver++(2M) samplers for ε-prediction models, as one `jax.lax.scan` each.

They follow the diffusers schedulers the official `sample_t2v.py` offers (`EulerDiscreteScheduler`,
`DPMSolverMultistepScheduler(algorithm_type='dpmsolver++', solver_order=2)`, default settings), on the same
training schedule (ᾱ of the 1000-step process). With σ_t = √((1 − ᾱ_t)/ᾱ_t):

  Euler (Karras et al. 2022, alg. 2 with no churn), in the variance-exploding variable x̃ = x/√ᾱ:
    model input x̃/√(σ²+1) at (fractional) step t; ε̂; x̃ ← x̃ + (σ_next − σ) ε̂; σ_last = 0.
    Steps `linspace(0, T−1, N)` reversed (fractional); x̃_start = √(σ_max² + 1) · noise.
  DPM-Solver++(2M) (Lu et al. 2022, alg. 2), data prediction x̂_0 = (x − σ'_t ε̂)/α_t with α_t = √ᾱ_t,
    σ'_t = √(1 − ᾱ_t), λ = log(α/σ'), h = λ_next − λ:
    first order (step 0 and the last step): x ← (σ'_next/σ'_t) x − α_next (e^{−h} − 1) x̂_0;
    second order: D = x̂_0 + (x̂_0 − x̂_0^prev) h/(2 h_prev); x ← (σ'_next/σ'_t) x − α_next (e^{−h} − 1) D;
    the last step goes to σ = 0 and returns x̂_0. Steps `round(linspace(0, T−1, N+1))` reversed, last dropped.
Other spacings: `sampler_timesteps`.

`model_fn(x, t, **model_kwargs)` returns `(B, ..., C)` or `(B, ..., 2C)` (learned sigma: only the first C channels,
the ε̂, are used). Classifier-free guidance belongs inside model_fn (`guidance.guided_model_fn`).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from framedit_jax.diffusion.sampling import _progress_fn, _report

SPACINGS = ('linspace', 'leading', 'trailing')


def sampler_timesteps(num_steps: int, num_train_timesteps: int = 1000, spacing: str = 'linspace',
                      solver: str = 'euler') -> np.ndarray:
  """Descending training steps visited by an N-step sampler (diffusers `timestep_spacing`, steps_offset 0).

  Euler: 'linspace' `linspace(0, T−1, N)` (fractional), 'leading' `arange(N)·(T // N)`, 'trailing'
  `round(arange(T, 0, −T/N)) − 1`. DPM-Solver: 'linspace' `round(linspace(0, T−1, N+1))` without its first
  (= T−1 after reversal, last dropped), 'trailing' as Euler. Returns float64 `(N,)`.

  Raises:
    ValueError: N outside [1, T], or a spacing the solver does not offer.
  """
  n, tt = int(num_steps), int(num_train_timesteps)
  if not 1 <= n <= tt:
    raise ValueError(f'num_steps must be in [1, {tt}], got {num_steps}.')
  if spacing == 'trailing':
    return (np.round(np.arange(tt, 0, -tt / n)) - 1).astype(np.float64)
  if spacing == 'linspace':
    if solver == 'euler':
      return np.linspace(0, tt - 1, n)[::-1].copy()
    return np.round(np.linspace(0, tt - 1, n + 1))[::-1][:-1].copy()
  if spacing == 'leading' and solver == 'euler':
    return (np.arange(n) * (tt // n))[::-1].astype(np.float64)
  raise ValueError(f'spacing={spacing!r} is not offered for {solver}; use one of {SPACINGS}'
                   f'{"" if solver == "euler" else " except leading"}.')


def _sigma_table(alphas_cumprod: np.ndarray, timesteps: np.ndarray) -> np.ndarray:
  ab = np.asarray(alphas_cumprod, np.float64)
  sig = np.sqrt((1 - ab) / ab)
  return np.interp(timesteps, np.arange(len(ab)), sig)


def _eps(model_fn, x, t, model_kwargs):
  out = model_fn(x, t, **(model_kwargs or {}))
  c = x.shape[-1]
  if out.shape[-1] not in (c, 2 * c):
    raise ValueError(f'model output has {out.shape[-1]} channels; expected {c} (eps) or {2 * c} (learned sigma).')
  return out[..., :c]


def _init(shape, key, noise, dtype):
  if noise is None:
    return jax.random.normal(key, tuple(shape), dtype)
  if tuple(noise.shape) != tuple(shape):
    raise ValueError(f'sampler: noise shape {tuple(noise.shape)} != shape {tuple(shape)}.')
  return jnp.asarray(noise, dtype)


def euler_sample_loop(alphas_cumprod: np.ndarray, model_fn: Callable[..., jax.Array], shape: tuple[int, ...],
                      key: jax.Array, *, num_steps: int = 50, spacing: str = 'linspace', model_kwargs=None,
                      noise: jax.Array | None = None, progress: Any = False, dtype: Any = jnp.float32) -> jax.Array:
  """Euler sampling (diffusers `EulerDiscreteScheduler`, ε-prediction, no churn) as one lax.scan.

  Args:
    alphas_cumprod: `(T,)` ᾱ of the training process (`create_diffusion('').alphas_cumprod`).
    model_fn: `(x (B, ..., C), t (B,) float steps, **model_kwargs) -> (B, ..., C or 2C)`.
    shape: `(B, ..., C)`.
    key: PRNG key for the starting noise (the sampler is deterministic after it).
    num_steps: N model calls. spacing: see `sampler_timesteps` (fractional steps for 'linspace', as diffusers).
    noise: optional unit Gaussian `shape` array replacing normal(key).
    progress: False, True (prints) or callable(done, total).

  Returns:
    x_0 of `shape`.
  """
  ts = sampler_timesteps(num_steps, len(alphas_cumprod), spacing, 'euler')
  sig = _sigma_table(alphas_cumprod, ts)
  sig_next = np.append(sig[1:], 0.0)
  x = _init(shape, key, noise, dtype) * np.float32(np.sqrt(sig.max() ** 2 + 1))
  fn = _progress_fn(progress)
  consts = tuple(jnp.asarray(a, jnp.float32) for a in (ts, sig, sig_next))

  def body(x, inp):
    i, t, s, s_next = inp
    eps = _eps(model_fn, x / jnp.sqrt(s * s + 1), jnp.full((x.shape[0],), t), model_kwargs)
    if fn is not None:
      _report(i + 1, num_steps, max(1, num_steps // 10), fn)
    return (x + (s_next - s) * eps).astype(x.dtype), None

  x, _ = jax.lax.scan(body, x, (jnp.arange(num_steps),) + consts)
  return x


def dpmpp_2m_sample_loop(alphas_cumprod: np.ndarray, model_fn: Callable[..., jax.Array], shape: tuple[int, ...],
                         key: jax.Array, *, num_steps: int = 50, spacing: str = 'linspace', model_kwargs=None,
                         noise: jax.Array | None = None, progress: Any = False,
                         dtype: Any = jnp.float32) -> jax.Array:
  """DPM-Solver++(2M) (diffusers `DPMSolverMultistepScheduler` defaults, final σ = 0) as one lax.scan.

  Arguments as `euler_sample_loop` (integer steps). Returns x_0 of `shape`.
  """
  ts = sampler_timesteps(num_steps, len(alphas_cumprod), spacing, 'dpm')
  ab = np.asarray(alphas_cumprod, np.float64)[ts.astype(np.int64)]
  alpha, sigma = np.sqrt(ab), np.sqrt(1 - ab)
  lam = np.log(alpha) - np.log(sigma)
  alpha_n, sigma_n = np.append(alpha[1:], 1.0), np.append(sigma[1:], 0.0)
  lam_n = np.append(lam[1:], np.inf)
  h = lam_n - lam
  h_prev = np.concatenate([[1.0], h[:-1]])
  ratio = np.where(np.arange(num_steps) > 0, 0.5 * h / h_prev, 0.0)  # step 0: first order
  ratio[-1] = 0.0  # last step: first order (to sigma = 0)
  coef_x = np.where(np.isfinite(lam_n), sigma_n / sigma, 0.0)
  coef_d = -alpha_n * np.expm1(-h)  # = 1 at the last step (h = inf)
  x = _init(shape, key, noise, dtype)
  fn = _progress_fn(progress)
  consts = tuple(jnp.asarray(a, jnp.float32) for a in (ts, alpha, sigma, coef_x, coef_d, ratio))

  def body(carry, inp):
    x, x0_prev = carry
    i, t, a, s, cx, cd, r = inp
    eps = _eps(model_fn, x, jnp.full((x.shape[0],), t).astype(jnp.int32), model_kwargs)
    x0 = (x - s * eps) / a
    d = x0 + r * (x0 - x0_prev)
    if fn is not None:
      _report(i + 1, num_steps, max(1, num_steps // 10), fn)
    return ((cx * x + cd * d).astype(x.dtype), x0), None

  (x, _), _ = jax.lax.scan(body, (x, jnp.zeros_like(x)), (jnp.arange(num_steps),) + consts)
  return x

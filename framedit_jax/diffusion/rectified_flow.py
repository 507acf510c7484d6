"""Rectified flow (SD3, Esser et al. 2024, §2-3): velocity prediction, logit-normal t with a shift, Euler sampler.

Conventions (SD3 eq. 2-3, "rectified flow" forward process):
  x_t = (1 - t) x_0 + t eps,    t in [0, 1] (t = 0: data, t = 1: noise),    eps ~ N(0, I)
  target velocity v = dx_t/dt = eps - x_0;    loss = mean_flat((v_theta(x_t, t) - v)^2)
  training t: u ~ N(logit_mean, logit_std), t = sigmoid(u) (SD3 "logit-normal", eq. 19), then the resolution
  shift t <- shift t / (1 + (shift - 1) t) (SD3 §5.3.2; shift > 1 puts more weight on noisier t).
  sampling: Euler from t = 1 to t = 0 on `num_steps` shifted uniform times, x <- x + (t_next - t) v_theta(x, t),
  as one `lax.scan`.
The model is called as `model_fn(x_t, t * time_scale)` (time_scale 1000: the DiT timestep embedding keeps its
0..1000 range, as SD3 does). Only the first C output channels are the velocity (train with learn_sigma=False).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp

from framedit_jax.diffusion.math_utils import mean_flat


def shift_time(t: jax.Array, shift: float) -> jax.Array:
  """SD3 time shift `shift t / (1 + (shift - 1) t)`: maps [0, 1] onto itself, identity for shift = 1."""
  return shift * t / (1.0 + (shift - 1.0) * t)


@dataclasses.dataclass(frozen=True)
class RectifiedFlow:
  """Rectified-flow objective and sampler (drop-in for `GaussianDiffusion` in the train step and sampler).

  Attributes:
    shift: SD3 time shift (>= 1 puts more training and sampling time at high noise); 1 = none.
    logit_mean, logit_std: logit-normal training-time distribution (SD3 default 0, 1).
    num_sample_steps: Euler steps of `p_sample_loop`.
    time_scale: the model sees `t * time_scale`.
  """
  shift: float = 1.0
  logit_mean: float = 0.0
  logit_std: float = 1.0
  num_sample_steps: int = 50
  time_scale: float = 1000.0

  def __post_init__(self):
    if self.shift <= 0 or self.logit_std <= 0 or self.num_sample_steps < 1:
      raise ValueError(f'RectifiedFlow: shift={self.shift} and logit_std={self.logit_std} must be > 0 and '
                       f'num_sample_steps={self.num_sample_steps} >= 1 (config.diffusion.rf_*).')

  @property
  def num_timesteps(self) -> int:
    """Compatibility with code that sizes integer timesteps; rectified flow draws continuous t."""
    return int(self.time_scale)

  def sample_t(self, key: jax.Array, batch_size: int) -> jax.Array:
    """Training times: float32 `(B,)` in (0, 1), logit-normal then shifted."""
    u = self.logit_mean + self.logit_std * jax.random.normal(key, (batch_size,), jnp.float32)
    return shift_time(jax.nn.sigmoid(u), self.shift)

  @staticmethod
  def interpolate(x_start: jax.Array, noise: jax.Array, t: jax.Array) -> jax.Array:
    """`x_t = (1 - t) x_0 + t eps` with t `(B,)` broadcast over the other axes."""
    tb = t.reshape((-1,) + (1,) * (x_start.ndim - 1)).astype(x_start.dtype)
    return (1.0 - tb) * x_start + tb * noise

  def training_losses(self, model_fn: Callable, x_start: jax.Array, t: jax.Array, noise: jax.Array | None = None,
                      model_kwargs: dict | None = None, *, key: jax.Array | None = None) -> dict[str, jax.Array]:
    """Velocity-matching loss per sample.

    Args:
      model_fn: `(x_t (B, ..., C), t_model (B,), **model_kwargs) -> (B, ..., C_out >= C)`; first C channels = v.
      x_start: `(B, ..., C)` clean data. t: float `(B,)` in [0, 1] (from `sample_t`).
      noise: `(B, ..., C)` eps, or None to draw it from `key`.

    Returns:
      `{'loss', 'mse'}`, each `(B,)`: mean_flat((v_theta - (eps - x_0))^2).

    Raises:
      ValueError: noise and key both missing.
    """
    if noise is None:
      if key is None:
        raise ValueError('RectifiedFlow.training_losses: pass noise=... or key=... to draw it.')
      noise = jax.random.normal(key, x_start.shape, x_start.dtype)
    t = jnp.asarray(t, jnp.float32)
    x_t = self.interpolate(x_start, noise, t)
    out = model_fn(x_t, t * self.time_scale, **(model_kwargs or {}))
    v = out[..., :x_start.shape[-1]].astype(jnp.float32)
    mse = mean_flat(jnp.square(v - (noise - x_start)))
    return {'loss': mse, 'mse': mse}

  def sample_times(self, num_steps: int | None = None) -> jax.Array:
    """float32 `(num_steps + 1,)` from 1 to 0: uniform in [0, 1], then shifted."""
    n = num_steps or self.num_sample_steps
    return shift_time(jnp.linspace(1.0, 0.0, n + 1, dtype=jnp.float32), self.shift)

  def euler_sample_loop(self, model_fn: Callable, shape: tuple[int, ...], key: jax.Array, *,
                        num_steps: int | None = None, noise: jax.Array | None = None,
                        model_kwargs: dict | None = None) -> jax.Array:
    """Integrates dx/dt = v_theta(x, t) from t = 1 (noise) to t = 0 with Euler steps in one `lax.scan`.

    Args:
      model_fn: as in `training_losses` (wrap it with `framedit_jax.diffusion.guided_model_fn` for CFG).
      shape: `(B, ..., C)`; key: draws the starting noise unless `noise` is given.

    Returns:
      float32 `(B, ..., C)` samples x_0.
    """
    x = jax.random.normal(key, shape, jnp.float32) if noise is None else noise.astype(jnp.float32)
    times = self.sample_times(num_steps)
    c = shape[-1]

    def step(x, tt):
      t, t_next = tt
      tb = jnp.full((shape[0],), t * self.time_scale, jnp.float32)
      v = model_fn(x, tb, **(model_kwargs or {}))[..., :c].astype(jnp.float32)
      return x + (t_next - t) * v, None

    x, _ = jax.lax.scan(step, x, (times[:-1], times[1:]))
    return x

  def p_sample_loop(self, model_fn: Callable, shape: tuple[int, ...], key: jax.Array, *, clip_denoised: bool = False,
                    model_kwargs: dict | None = None, **_) -> jax.Array:
    """Sampler interface of `GaussianDiffusion` (the 'euler' entry of `framedit_jax.diffusion.samplers`): the Euler
    loop, clipped to [-1, 1] at the end when `clip_denoised` (pixel space)."""
    x = self.euler_sample_loop(model_fn, shape, key, model_kwargs=model_kwargs)
    return jnp.clip(x, -1.0, 1.0) if clip_denoised else x

"""The sampler registry: `config.sample.sampler` x `config.diffusion.objective` -> one sampling function.

  objective='iddpm' (ε, x_0 or v prediction on the IDDPM process of `config.diffusion`):
    'ddpm'      ancestral DDPM on the respaced process `str(num_steps)` (official FrameDiT/Latte DDPM-250),
                learned variance used when `learn_sigma` (`GaussianDiffusion.p_sample_loop`);
    'ddim'      DDIM on `ddim{num_steps}` with `sample.ddim_eta` (`GaussianDiffusion.ddim_sample_loop`);
    'euler'     diffusers `EulerDiscreteScheduler` on the training ᾱ (`ode_samplers.euler_sample_loop`);
    'dpmpp_2m'  diffusers `DPMSolverMultistepScheduler` (2M, dpmsolver++) (`ode_samplers.dpmpp_2m_sample_loop`).
  objective='rectified_flow' (velocity, SD3):
    'euler'     the flow-ODE Euler sampler on `num_steps` shifted times (`RectifiedFlow.p_sample_loop`).

`create_sampler(config, clip_denoised)` returns `sample(model_fn, shape, key) -> x_0`, one `lax.scan` inside,
to be called under `jax.jit`. `validate_sample_config(config)` is the pure, compile-free check of these fields.
"""

from __future__ import annotations

from typing import Any, Callable

import jax

from framedit_jax.diffusion.ode_samplers import dpmpp_2m_sample_loop
from framedit_jax.diffusion.ode_samplers import euler_sample_loop
from framedit_jax.diffusion.factory import create_diffusion
from framedit_jax.diffusion.respace import space_timesteps

SAMPLERS: dict[str, tuple[str, ...]] = {
    'iddpm': ('ddpm', 'ddim', 'euler', 'dpmpp_2m'),
    'rectified_flow': ('euler',),
}
_EPS_ONLY = ('euler', 'dpmpp_2m')  # the diffusers ODE solvers here read the model output as ε

SampleFn = Callable[[Callable[[jax.Array, jax.Array], jax.Array], tuple[int, ...], jax.Array], jax.Array]


def validate_sample_config(config: Any) -> None:
  """Checks `config.sample.{sampler, num_steps, ddim_eta, cfg_scale}` against `config.diffusion`; compiles nothing.

  Raises:
    ValueError: one line naming the field and the fix: an unknown objective, a sampler the objective does not
      offer, num_steps < 1 or > diffusion_steps, a DDIM step count without an exact integer stride,
      ddim_eta < 0 or set for a sampler other than 'ddim', cfg_scale < 0, or an ε-only solver with
      `diffusion.predict` other than 'epsilon'.
  """
  s, d = config.sample, config.diffusion
  objective = d.get('objective', 'iddpm')
  if objective not in SAMPLERS:
    raise ValueError(f'config.diffusion.objective={objective!r}: must be one of {tuple(SAMPLERS)}.')
  if s.sampler not in SAMPLERS[objective]:
    raise ValueError(f'config.sample.sampler={s.sampler!r} is not a sampler of config.diffusion.objective='
                     f'{objective!r}; use one of {SAMPLERS[objective]}.')
  n = s.num_steps
  if not isinstance(n, int) or isinstance(n, bool) or n < 1:
    raise ValueError(f'config.sample.num_steps={n!r}: must be an integer >= 1.')
  steps = int(d.get('diffusion_steps', 1000))
  if n > steps:  # (rectified flow too: its time grid is capped like the IDDPM process)
    raise ValueError(f'config.sample.num_steps={n} must be <= config.diffusion.diffusion_steps={steps}.')
  if s.sampler == 'ddim':
    try:
      space_timesteps(steps, f'ddim{n}')
    except ValueError:
      raise ValueError(f'config.sample.num_steps={n}: DDIM needs an integer stride with exactly {n} of {steps} '
                       f'steps; pick a divisor-friendly count such as 10, 25, 50, 100 or 250.') from None
  eta = _number(s, 'ddim_eta', 0.0)
  if not eta >= 0:
    raise ValueError(f'config.sample.ddim_eta={eta}: must be >= 0.')
  if eta != 0 and s.sampler != 'ddim':
    raise ValueError(f"config.sample.ddim_eta={eta} only applies to sampler='ddim' (got {s.sampler!r}); set it "
                     f'to 0.')
  if not _number(s, 'cfg_scale', 1.0) >= 0:
    raise ValueError(f'config.sample.cfg_scale={s.cfg_scale}: must be >= 0 (1 = no guidance).')
  predict = d.get('predict', 'epsilon')
  if objective == 'iddpm' and s.sampler in _EPS_ONLY and predict != 'epsilon':
    raise ValueError(f"config.sample.sampler={s.sampler!r} needs config.diffusion.predict='epsilon' (got "
                     f"{predict!r}); use 'ddpm' or 'ddim'.")


def _number(s: Any, field: str, default: float) -> float:
  value = s.get(field, default)
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    raise ValueError(f'config.sample.{field}={value!r}: must be a number.')
  return float(value)


def _diffusion(d: Any, respacing: str):
  return create_diffusion(timestep_respacing=respacing, noise_schedule=d.get('noise_schedule', 'linear'),
                          learn_sigma=bool(d.get('learn_sigma', True)),
                          diffusion_steps=int(d.get('diffusion_steps', 1000)), predict=d.get('predict', 'epsilon'))


def create_sampler(config: Any, clip_denoised: bool = False) -> SampleFn:
  """`sample(model_fn, shape, key) -> x_0` for `config.sample.sampler` under `config.diffusion.objective`.

  Args:
    config: uses `diffusion.*` and `sample.{sampler, num_steps, ddim_eta}` (checked by `validate_sample_config`).
    clip_denoised: clip the predicted x_0 to [-1, 1] (DDPM/DDIM each step, rectified flow at the end; pixel
      space); the Euler / DPM-Solver++ ODE solvers never clip (diffusers defaults).

  Returns:
    `sample(model_fn (x (B, ..., C), t (B,)) -> (B, ..., C_out), shape (B, ..., C), key) -> (B, ..., C)`:
    `model_fn` takes the model's own timesteps (original IDDPM steps, or 1000 t for rectified flow); guidance
    belongs inside it (`framedit_jax.diffusion.guidance.guided_model_fn`).

  Raises:
    ValueError: as `validate_sample_config`.
  """
  validate_sample_config(config)
  s, d = config.sample, config.diffusion
  n, name = int(s.num_steps), s.sampler
  if d.get('objective', 'iddpm') == 'rectified_flow':
    from framedit_jax.diffusion.objectives import rectified_flow_from_config  # pylint: disable=g-import-not-at-top
    flow = rectified_flow_from_config(d, n)
    return lambda model_fn, shape, key: flow.p_sample_loop(model_fn, shape, key, clip_denoised=clip_denoised)
  if name == 'ddpm':
    diffusion = _diffusion(d, str(n))
    return lambda model_fn, shape, key: diffusion.p_sample_loop(model_fn, shape, key, clip_denoised=clip_denoised)
  if name == 'ddim':
    diffusion, eta = _diffusion(d, f'ddim{n}'), float(s.ddim_eta)
    return lambda model_fn, shape, key: diffusion.ddim_sample_loop(model_fn, shape, key, eta=eta,
                                                                   clip_denoised=clip_denoised)
  alphas_cumprod = _diffusion(d, '').alphas_cumprod
  loop = euler_sample_loop if name == 'euler' else dpmpp_2m_sample_loop
  return lambda model_fn, shape, key: loop(alphas_cumprod, model_fn, shape, key, num_steps=n)


def sampler_name(config: Any) -> str:
  """The sampler and its step count, e.g. 'ddpm250', 'ddim50', 'dpmpp_2m25', 'euler50' (output folder names)."""
  return f'{config.sample.sampler}{int(config.sample.num_steps)}'

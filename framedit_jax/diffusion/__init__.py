"""IDDPM Gaussian diffusion for framedit-jax: hybrid loss, respacing, jitted scan samplers.

Source: IDDPM (Nichol & Dhariwal 2021) as the official `diffusion/` of minhkhoale/FrameDiT uses it.

Usage:
  diffusion = create_diffusion(timestep_respacing="")            # training: 1000 steps, learned sigma, ε target
  losses = diffusion.training_losses(model_fn, x0, t, noise)      # {'loss', 'mse', 'vb'}, each (B,)
  sampler = create_diffusion("250")                               # official DDPM-250 sampling
  x0 = jax.jit(lambda k: sampler.p_sample_loop(model_fn, shape, k))(key)
  sample = create_sampler(config)                                 # config.sample.sampler, one registry
"""

from framedit_jax.diffusion.factory import create_diffusion
from framedit_jax.diffusion.gaussian_diffusion import GaussianDiffusion
from framedit_jax.diffusion.guidance import guided_model_fn
from framedit_jax.diffusion.math_utils import discretized_gaussian_log_likelihood
from framedit_jax.diffusion.math_utils import mean_flat
from framedit_jax.diffusion.math_utils import normal_kl
from framedit_jax.diffusion.ode_samplers import dpmpp_2m_sample_loop
from framedit_jax.diffusion.ode_samplers import euler_sample_loop
from framedit_jax.diffusion.respace import respace_betas
from framedit_jax.diffusion.respace import space_timesteps
from framedit_jax.diffusion.samplers import create_sampler
from framedit_jax.diffusion.samplers import validate_sample_config
from framedit_jax.diffusion.schedules import get_named_beta_schedule


__all__ = [
    'GaussianDiffusion', 'create_diffusion', 'create_sampler',
    'discretized_gaussian_log_likelihood', 'get_named_beta_schedule',
    'mean_flat', 'normal_kl', 'respace_betas', 'space_timesteps',
    'dpmpp_2m_sample_loop', 'euler_sample_loop', 'guided_model_fn', 'validate_sample_config',
]

"""`create_diffusion`: the official `diffusion/__init__.py` factory (schedule, variance and loss type, respacing)."""

from framedit_jax.diffusion.gaussian_diffusion import GaussianDiffusion
from framedit_jax.diffusion.respace import respace_betas
from framedit_jax.diffusion.respace import space_timesteps
from framedit_jax.diffusion.schedules import get_named_beta_schedule


def create_diffusion(timestep_respacing='', noise_schedule='linear', learn_sigma=True, diffusion_steps=1000,
                     predict='epsilon', sigma_small=False, use_kl=False, rescale_learned_sigmas=False):
  """Builds a (respaced) GaussianDiffusion with the official `create_diffusion` options.

  Args:
    timestep_respacing: '' / None (all steps), '250', 'ddim50', '10,20,...' (see `space_timesteps`).
    noise_schedule: 'linear' or 'cosine' ('squaredcos_cap_v2').
    learn_sigma: model outputs 2C channels (mean part + variance interpolation v ∈ [-1, 1]).
    diffusion_steps: length of the original process T.
    predict: 'epsilon' (official), 'x0' or 'v' (v = √ᾱ_t ε − √(1−ᾱ_t) x_0).
    sigma_small: with a fixed variance, use β̃_t (posterior) instead of β_t.
    use_kl: train on the VLB alone, rescaled by the number of steps (IDDPM RESCALED_KL).
    rescale_learned_sigmas: multiply vb by K/1000 (IDDPM RESCALED_MSE).

  Returns:
    GaussianDiffusion with num_timesteps = number of kept steps; its model calls use original steps.

  Raises:
    ValueError: unknown schedule / predict value, or an impossible respacing.
  """
  betas = get_named_beta_schedule(noise_schedule, diffusion_steps)
  if use_kl:
    loss_type = 'rescaled_kl'
  elif rescale_learned_sigmas:
    loss_type = 'rescaled_mse'
  else:
    loss_type = 'mse'
  if learn_sigma:
    var_type = 'learned_range'
  else:
    var_type = 'fixed_small' if sigma_small else 'fixed_large'
  base = GaussianDiffusion(betas, predict=predict, var_type=var_type, loss_type=loss_type)
  keep = space_timesteps(int(diffusion_steps), timestep_respacing)
  new_betas, timestep_map = respace_betas(base.alphas_cumprod, keep)
  return GaussianDiffusion(new_betas, predict=predict, var_type=var_type, loss_type=loss_type,
                           timestep_map=timestep_map, original_num_steps=int(diffusion_steps))

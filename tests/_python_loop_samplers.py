"""Second implementation of the DDPM/DDIM loops for tests: a Python for-loop over one jitted step.

It consumes the same random numbers as the library's `lax.scan` loops (x_K = normal(split(key)[0]), step i draws
normal(fold_in(split(key)[1], i))), so the two must agree step by step.
"""

import jax
import jax.numpy as jnp

from framedit_jax.diffusion import sampling


def _loop(diffusion, step_fn, shape, key, return_intermediates):
  key_init, key_steps = jax.random.split(key)
  x = jax.random.normal(key_init, tuple(shape), jnp.float32)

  @jax.jit
  def step(x, i):
    return step_fn(x, jnp.full((x.shape[0],), i, jnp.int32), jax.random.fold_in(key_steps, i))

  traj = []
  for i in range(diffusion.num_timesteps - 1, -1, -1):
    x = step(x, jnp.int32(i))
    traj.append(x)
  return (x, jnp.stack(traj)) if return_intermediates else x


def p_sample_loop_python(diffusion, model_fn, shape, key, *, clip_denoised=False, return_intermediates=False):
  """DDPM ancestral sampling, one jitted `sampling.p_sample` per step."""
  return _loop(diffusion, lambda x, t, k: sampling.p_sample(diffusion, model_fn, x, t, k,
                                                            clip_denoised=clip_denoised)['sample'],
               shape, key, return_intermediates)


def ddim_sample_loop_python(diffusion, model_fn, shape, key, *, eta=0.0, clip_denoised=False,
                            return_intermediates=False):
  """DDIM sampling, one jitted `sampling.ddim_sample` per step."""
  return _loop(diffusion, lambda x, t, k: sampling.ddim_sample(diffusion, model_fn, x, t, k, eta=eta,
                                                               clip_denoised=clip_denoised)['sample'],
               shape, key, return_intermediates)

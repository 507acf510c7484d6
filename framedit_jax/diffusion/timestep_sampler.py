"""Timestep samplers (IDDPM `timestep_sampler.py`) in a functional, jit-friendly form.

Each sampler is a small stateless object; its state (if any) is a pytree the caller keeps in the train state:
  state = sampler.init()
  t, w = sampler.sample(state, key, batch_size)       # t (B,) int32 respaced steps, w (B,) importance weights
  loss = (losses['loss'] * w).mean()
  state = sampler.update(state, t, losses['loss'])    # loss-aware samplers learn from the per-sample losses
Under multi-device jit, pass the GLOBAL (B,) t and losses to `update` so every device keeps the same state
(the official code all-gathers them).
"""

import jax
import jax.numpy as jnp


class UniformSampler:
  """t ~ Uniform{0, ..., K−1}, weights 1."""

  def __init__(self, num_timesteps):
    self.num_timesteps = int(num_timesteps)

  def init(self):
    """Empty state."""
    return {}

  def weights(self, state):
    """(K,) unnormalised sampling weights."""
    del state
    return jnp.ones((self.num_timesteps,), jnp.float32)

  def sample(self, state, key, batch_size):
    """Returns (t (B,) int32, weights (B,) float32 = 1)."""
    del state
    t = jax.random.randint(key, (batch_size,), 0, self.num_timesteps, dtype=jnp.int32)
    return t, jnp.ones((batch_size,), jnp.float32)

  def update(self, state, ts, losses):
    """No-op."""
    del ts, losses
    return state


class LossSecondMomentResampler:
  """Importance sampling with p_t ∝ √E[L_t²] over the last `history_per_term` losses of each t (IDDPM).

  Until every t has a full history the distribution is uniform. Afterwards
  p = (1 − uniform_prob)·w/Σw + uniform_prob/K, and each sample's weight is 1/(K p_t) so that the weighted loss
  stays an unbiased estimate of the uniform-t objective.
  """

  def __init__(self, num_timesteps, history_per_term=10, uniform_prob=0.001):
    self.num_timesteps = int(num_timesteps)
    self.history_per_term = int(history_per_term)
    self.uniform_prob = float(uniform_prob)

  def init(self):
    """State: 'history' (K, H) float32 last losses per step, 'counts' (K,) int32 filled entries."""
    return {'history': jnp.zeros((self.num_timesteps, self.history_per_term), jnp.float32),
            'counts': jnp.zeros((self.num_timesteps,), jnp.int32)}

  def warmed_up(self, state):
    """True once every step has `history_per_term` losses."""
    return jnp.all(state['counts'] == self.history_per_term)

  def weights(self, state):
    """(K,) sampling probabilities (uniform before warm-up; sums to 1 either way)."""
    w = jnp.sqrt(jnp.mean(jnp.square(state['history']), axis=-1))
    w = w / jnp.sum(w)
    w = w * (1.0 - self.uniform_prob) + self.uniform_prob / self.num_timesteps
    uniform = jnp.full((self.num_timesteps,), 1.0 / self.num_timesteps, w.dtype)
    return jnp.where(self.warmed_up(state), w, uniform)

  def sample(self, state, key, batch_size):
    """Returns (t (B,) int32 drawn from `weights`, importance weights 1/(K p_t) (B,) float32)."""
    p = self.weights(state)
    p = p / jnp.sum(p)
    t = jax.random.choice(key, self.num_timesteps, (batch_size,), p=p).astype(jnp.int32)
    return t, (1.0 / (self.num_timesteps * p[t])).astype(jnp.float32)

  def update(self, state, ts, losses):
    """Appends each (t, loss) in order; a full history drops its oldest entry (as IDDPM, one at a time)."""
    h = self.history_per_term

    def add(carry, tl):
      hist, counts = carry
      t, loss = tl
      row, n = hist[t], counts[t]
      full = n == h
      shifted = jnp.concatenate([row[1:], loss[None]])
      appended = row.at[jnp.minimum(n, h - 1)].set(loss)
      hist = hist.at[t].set(jnp.where(full, shifted, appended))
      counts = counts.at[t].set(jnp.where(full, n, n + 1))
      return (hist, counts), None

    ts = jnp.asarray(ts, jnp.int32).reshape(-1)
    losses = jnp.asarray(losses, state['history'].dtype).reshape(-1)
    (hist, counts), _ = jax.lax.scan(add, (state['history'], state['counts']), (ts, losses))
    return {'history': hist, 'counts': counts}


def create_named_schedule_sampler(name, num_timesteps, **kwargs):
  """'uniform' -> UniformSampler, 'loss-second-moment' -> LossSecondMomentResampler.

  Args:
    name: sampler name.
    num_timesteps: K (use diffusion.num_timesteps).
    **kwargs: passed to the sampler (history_per_term, uniform_prob).

  Raises:
    ValueError: unknown name.
  """
  if name == 'uniform':
    return UniformSampler(num_timesteps)
  if name == 'loss-second-moment':
    return LossSecondMomentResampler(num_timesteps, **kwargs)
  raise ValueError(f"schedule sampler {name!r} is unknown; use 'uniform' or 'loss-second-moment'.")

"""Gaussian diffusion (IDDPM / DiT / Latte / FrameDiT) as a pure-function object for JAX.

Math follows the official `diffusion/gaussian_diffusion.py` + `respace.py` (IDDPM-derived,
Nichol & Dhariwal 2021; FrameDiT supplement §2.1 Eq. 17). Differences from the official code:
  * channels are the LAST axis (videos are (B, T, H, W, C)); the official code splits at axis 2 of (B, F, C, H, W);
  * `p_mean_variance` takes the model OUTPUT, not the model; `apply_model` calls `model_fn` with original steps;
  * a v-prediction target ('v') is added: v = √ᾱ_t·ε − √(1−ᾱ_t)·x_0 (Salimans & Ho 2022);
  * `training_losses` always returns "loss", "mse" and "vb" (vb = 0 when the variance is fixed and loss is MSE).

All tables are float64 numpy arrays; they are cast to the dtype of the data they multiply, so under jit they are
compile-time constants and the object is safe to close over. `t` is always the (respaced) index in
[0, num_timesteps); the model sees `timestep_map[t]`, the original step.
"""


import jax
import jax.numpy as jnp
import numpy as np

from framedit_jax.diffusion import math_utils
from framedit_jax.diffusion import sampling

PREDICT_TYPES = ('epsilon', 'x0', 'v')
VAR_TYPES = ('learned_range', 'fixed_large', 'fixed_small')
LOSS_TYPES = ('mse', 'rescaled_mse', 'kl', 'rescaled_kl')

_LOG2 = float(np.log(2.0))


class GaussianDiffusion:
  """Tables and pure functions of a (possibly respaced) DDPM.

  Attributes:
    num_timesteps: number of (respaced) steps K.
    timestep_map: (K,) int32 original step of each respaced index.
    original_num_steps: number of steps of the original process.
    predict: 'epsilon' | 'x0' | 'v' — what the first C output channels of the model mean.
    var_type: 'learned_range' (model outputs 2C channels) | 'fixed_large' | 'fixed_small'.
    loss_type: 'mse' | 'rescaled_mse' | 'kl' | 'rescaled_kl' (IDDPM LossType).
    betas, alphas_cumprod, ...: (K,) float64 numpy tables.
  """

  def __init__(self, betas, *, predict='epsilon', var_type='learned_range', loss_type='mse',
               timestep_map=None, original_num_steps=None):
    """Builds the tables.

    Args:
      betas: (K,) betas in (0, 1] of the (respaced) process.
      predict: model target, one of PREDICT_TYPES.
      var_type: one of VAR_TYPES.
      loss_type: one of LOSS_TYPES.
      timestep_map: (K,) original step of each index (default: identity).
      original_num_steps: length of the original process (default: K).

    Raises:
      ValueError: bad option or betas outside (0, 1].
    """
    if predict not in PREDICT_TYPES:
      raise ValueError(f'predict={predict!r} is unknown; use one of {PREDICT_TYPES}.')
    if var_type not in VAR_TYPES:
      raise ValueError(f'var_type={var_type!r} is unknown; use one of {VAR_TYPES}.')
    if loss_type not in LOSS_TYPES:
      raise ValueError(f'loss_type={loss_type!r} is unknown; use one of {LOSS_TYPES}.')
    betas = np.asarray(betas, dtype=np.float64)
    if betas.ndim != 1 or not ((betas > 0).all() and (betas <= 1).all()):
      raise ValueError('betas must be a 1-D array with values in (0, 1].')
    self.predict = predict
    self.var_type = var_type
    self.loss_type = loss_type
    self.learn_sigma = var_type == 'learned_range'
    self.num_timesteps = k = int(betas.shape[0])
    self.timestep_map = (np.arange(k, dtype=np.int32) if timestep_map is None
                         else np.asarray(timestep_map, dtype=np.int32))
    self.original_num_steps = k if original_num_steps is None else int(original_num_steps)

    self.betas = betas
    alphas = 1.0 - betas
    self.alphas_cumprod = np.cumprod(alphas)
    self.alphas_cumprod_prev = np.append(1.0, self.alphas_cumprod[:-1])
    self.alphas_cumprod_next = np.append(self.alphas_cumprod[1:], 0.0)
    self.sqrt_alphas_cumprod = np.sqrt(self.alphas_cumprod)
    self.sqrt_one_minus_alphas_cumprod = np.sqrt(1.0 - self.alphas_cumprod)
    self.log_one_minus_alphas_cumprod = np.log(1.0 - self.alphas_cumprod)
    self.sqrt_recip_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod)
    self.sqrt_recipm1_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod - 1.0)
    # Posterior q(x_{t-1} | x_t, x_0): variance β̃_t; its log is clipped by replacing β̃_0 = 0 with β̃_1.
    self.posterior_variance = betas * (1.0 - self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
    first = self.posterior_variance[1] if k > 1 else betas[0]
    self.posterior_log_variance_clipped = np.log(np.append(first, self.posterior_variance[1:]))
    self.posterior_mean_coef1 = betas * np.sqrt(self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
    self.posterior_mean_coef2 = (1.0 - self.alphas_cumprod_prev) * np.sqrt(alphas) / (1.0 - self.alphas_cumprod)
    self.log_betas = np.log(betas)
    # Fixed-large variance uses β̃_1 at t = 0 for a better decoder likelihood (IDDPM).
    self.fixed_large_variance = np.append(first, betas[1:])

  def __repr__(self):
    return (f'GaussianDiffusion(num_timesteps={self.num_timesteps}, original_num_steps={self.original_num_steps}, '
            f'predict={self.predict!r}, var_type={self.var_type!r}, loss_type={self.loss_type!r})')

  # ------------------------------------------------------------------ helpers

  @staticmethod
  def _extract(table, t, x):
    """table[t] cast to x.dtype, shaped to broadcast against x: t (B,) -> (B, 1, ..., 1); scalar t -> scalar."""
    vals = jnp.asarray(table, dtype=x.dtype)[jnp.asarray(t)]
    return vals.reshape(vals.shape + (1,) * (x.ndim - vals.ndim))

  def model_timesteps(self, t):
    """Original step index of each respaced index t (int32, same shape as t)."""
    return jnp.asarray(self.timestep_map)[jnp.asarray(t)]

  def apply_model(self, model_fn, x_t, t, model_kwargs=None):
    """model_fn(x_t, timestep_map[t], **model_kwargs): the model always sees ORIGINAL steps."""
    return model_fn(x_t, self.model_timesteps(t), **(model_kwargs or {}))

  def split_model_output(self, model_output, x_t):
    """Splits (B, ..., 2C) into the mean part (B, ..., C) and variance values, or (output, None) if not learned.

    Raises:
      ValueError: the channel count does not match learn_sigma.
    """
    c = x_t.shape[-1]
    want = 2 * c if self.learn_sigma else c
    if model_output.shape[:-1] != x_t.shape[:-1] or model_output.shape[-1] != want:
      raise ValueError(f'model output has shape {model_output.shape}, expected {x_t.shape[:-1] + (want,)} '
                       f'(learn_sigma={self.learn_sigma}; channels last). Check the model\'s learn_sigma.')
    if self.learn_sigma:
      return model_output[..., :c], model_output[..., c:]
    return model_output, None

  # ------------------------------------------------------------------ forward process

  def q_mean_variance(self, x_start, t):
    """q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I). Returns (mean, variance, log_variance), broadcastable to x."""
    mean = self._extract(self.sqrt_alphas_cumprod, t, x_start) * x_start
    var = self._extract(1.0 - self.alphas_cumprod, t, x_start)
    log_var = self._extract(self.log_one_minus_alphas_cumprod, t, x_start)
    return mean, var, log_var

  def q_sample(self, x_start, t, noise):
    """x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε.

    Args:
      x_start: (B, ...) clean data x_0.
      t: (B,) int respaced step indices.
      noise: (B, ...) standard normal ε, same shape as x_start.
    """
    if noise.shape != x_start.shape:
      raise ValueError(f'q_sample: noise shape {noise.shape} != x_start shape {x_start.shape}.')
    return (self._extract(self.sqrt_alphas_cumprod, t, x_start) * x_start
            + self._extract(self.sqrt_one_minus_alphas_cumprod, t, x_start) * noise)

  def q_posterior_mean_variance(self, x_start, x_t, t):
    """q(x_{t-1} | x_t, x_0) = N(c1_t x_0 + c2_t x_t, β̃_t).

    c1_t = β_t √ᾱ_{t-1} / (1 − ᾱ_t), c2_t = (1 − ᾱ_{t-1}) √α_t / (1 − ᾱ_t), β̃_t = β_t (1 − ᾱ_{t-1}) / (1 − ᾱ_t).

    Returns:
      (mean (B, ...), variance (B, 1, ..), log_variance_clipped (B, 1, ..)).
    """
    if x_start.shape != x_t.shape:
      raise ValueError(f'q_posterior_mean_variance: x_start {x_start.shape} != x_t {x_t.shape}.')
    mean = (self._extract(self.posterior_mean_coef1, t, x_t) * x_start
            + self._extract(self.posterior_mean_coef2, t, x_t) * x_t)
    var = self._extract(self.posterior_variance, t, x_t)
    log_var = self._extract(self.posterior_log_variance_clipped, t, x_t)
    return mean, var, log_var

  # ------------------------------------------------------------------ parameterisations

  def predict_xstart_from_eps(self, x_t, t, eps):
    """x̂_0 = √(1/ᾱ_t) x_t − √(1/ᾱ_t − 1) ε̂."""
    return (self._extract(self.sqrt_recip_alphas_cumprod, t, x_t) * x_t
            - self._extract(self.sqrt_recipm1_alphas_cumprod, t, x_t) * eps)

  def predict_eps_from_xstart(self, x_t, t, pred_xstart):
    """ε̂ = (√(1/ᾱ_t) x_t − x̂_0) / √(1/ᾱ_t − 1)."""
    return ((self._extract(self.sqrt_recip_alphas_cumprod, t, x_t) * x_t - pred_xstart)
            / self._extract(self.sqrt_recipm1_alphas_cumprod, t, x_t))

  def predict_xstart_from_v(self, x_t, t, v):
    """x̂_0 = √ᾱ_t x_t − √(1 − ᾱ_t) v̂ (v = √ᾱ_t ε − √(1 − ᾱ_t) x_0)."""
    return (self._extract(self.sqrt_alphas_cumprod, t, x_t) * x_t
            - self._extract(self.sqrt_one_minus_alphas_cumprod, t, x_t) * v)

  def get_v(self, x_start, noise, t):
    """The v target: v = √ᾱ_t ε − √(1 − ᾱ_t) x_0."""
    return (self._extract(self.sqrt_alphas_cumprod, t, x_start) * noise
            - self._extract(self.sqrt_one_minus_alphas_cumprod, t, x_start) * x_start)

  def pred_xstart_from_output(self, x_t, t, out):
    """x̂_0 from the (mean part of the) model output, per `predict`."""
    if self.predict == 'epsilon':
      return self.predict_xstart_from_eps(x_t, t, out)
    if self.predict == 'v':
      return self.predict_xstart_from_v(x_t, t, out)
    return out

  def training_target(self, x_start, noise, t):
    """What the mean channels regress onto: ε, x_0 or v."""
    if self.predict == 'epsilon':
      return noise
    if self.predict == 'v':
      return self.get_v(x_start, noise, t)
    return x_start

  # ------------------------------------------------------------------ reverse process

  def p_mean_variance(self, model_output, x_t, t, *, clip_denoised=False, denoised_fn=None):
    """p(x_{t-1} | x_t) from a model output (IDDPM `p_mean_variance`, with the model call taken out).

    Learned range: frac = (v + 1)/2, log σ² = frac·log β_t + (1 − frac)·log β̃_t (β̃ clipped).

    Args:
      model_output: (B, ..., 2C) if learn_sigma else (B, ..., C); use `apply_model` to get it.
      x_t: (B, ..., C) noisy data.
      t: (B,) int respaced indices.
      clip_denoised: clip x̂_0 to [-1, 1] (off by default: latents are not bounded).
      denoised_fn: optional callable applied to x̂_0 before clipping.

    Returns:
      dict with 'mean', 'variance', 'log_variance' (broadcastable to x_t) and 'pred_xstart'.
    """
    out, var_values = self.split_model_output(model_output, x_t)
    if self.var_type == 'learned_range':
      min_log = self._extract(self.posterior_log_variance_clipped, t, x_t)
      max_log = self._extract(self.log_betas, t, x_t)
      frac = (var_values + 1.0) / 2.0
      log_var = frac * max_log + (1.0 - frac) * min_log
      var = jnp.exp(log_var)
    elif self.var_type == 'fixed_large':
      var = self._extract(self.fixed_large_variance, t, x_t)
      log_var = self._extract(np.log(self.fixed_large_variance), t, x_t)
    else:
      var = self._extract(self.posterior_variance, t, x_t)
      log_var = self._extract(self.posterior_log_variance_clipped, t, x_t)
    pred_xstart = self.pred_xstart_from_output(x_t, t, out)
    if denoised_fn is not None:
      pred_xstart = denoised_fn(pred_xstart)
    if clip_denoised:
      pred_xstart = jnp.clip(pred_xstart, -1.0, 1.0)
    mean, _, _ = self.q_posterior_mean_variance(pred_xstart, x_t, t)
    return {'mean': mean, 'variance': var, 'log_variance': log_var, 'pred_xstart': pred_xstart}

  # ------------------------------------------------------------------ losses

  def vb_terms_bpd(self, model_output, x_start, x_t, t, *, clip_denoised=False):
    """One VLB term in bits per dim.

    t > 0: KL(q(x_{t-1}|x_t,x_0) ‖ p(x_{t-1}|x_t)); t = 0: discretised-Gaussian decoder NLL −log p(x_0|x_1).
    Both are mean_flat over non-batch axes, divided by ln 2.

    Returns:
      dict 'output' (B,) and 'pred_xstart' (B, ...).
    """
    true_mean, _, true_log_var = self.q_posterior_mean_variance(x_start, x_t, t)
    out = self.p_mean_variance(model_output, x_t, t, clip_denoised=clip_denoised)
    kl = math_utils.normal_kl(true_mean, true_log_var, out['mean'], out['log_variance'])
    kl = math_utils.mean_flat(kl) / _LOG2
    log_var = jnp.broadcast_to(out['log_variance'], x_start.shape)
    decoder_nll = -math_utils.discretized_gaussian_log_likelihood(
        x_start, means=out['mean'], log_scales=0.5 * log_var)
    decoder_nll = math_utils.mean_flat(decoder_nll) / _LOG2
    t = jnp.broadcast_to(jnp.asarray(t), kl.shape)
    return {'output': jnp.where(t == 0, decoder_nll, kl), 'pred_xstart': out['pred_xstart']}

  def losses_from_output(self, model_output, x_start, t, noise):
    """`training_losses` given the model output at x_t = q_sample(x_start, t, noise) (no model call).

    Returns:
      dict of (B,) arrays 'loss', 'mse', 'vb'.
    """
    x_t = self.q_sample(x_start, t, noise)
    out, var_values = self.split_model_output(model_output, x_t)
    mse = math_utils.mean_flat(jnp.square(self.training_target(x_start, noise, t) - out))
    if self.loss_type in ('kl', 'rescaled_kl'):
      vb = self.vb_terms_bpd(model_output, x_start, x_t, t)['output']
      if self.loss_type == 'rescaled_kl':
        vb = vb * self.num_timesteps
      return {'loss': vb, 'mse': mse, 'vb': vb}
    if self.learn_sigma:
      # Frozen mean: the VLB trains only the variance channels.
      frozen = jnp.concatenate([jax.lax.stop_gradient(out), var_values], axis=-1)
      vb = self.vb_terms_bpd(frozen, x_start, x_t, t)['output']
      if self.loss_type == 'rescaled_mse':
        vb = vb * (self.num_timesteps / 1000.0)
    else:
      vb = jnp.zeros_like(mse)
    return {'loss': mse + vb, 'mse': mse, 'vb': vb}

  def training_losses(self, model_fn, x_start, t, noise=None, model_kwargs=None, *, key=None):
    """Hybrid IDDPM loss for one timestep per sample.

    loss = mse + vb with mse = mean_flat((target − out)²) and vb the VLB term computed with the mean channels
    stop-gradient'ed (learned sigma, 'mse' loss). 'kl' losses: loss = vb (× K for 'rescaled_kl'), mean not frozen.

    Args:
      model_fn: (x_t (B, ..., C), t (B,) original steps, **model_kwargs) -> (B, ..., 2C or C).
      x_start: (B, ..., C) clean data (latents), channels last.
      t: (B,) int respaced indices in [0, num_timesteps).
      noise: (B, ..., C) ε; if None it is drawn from `key`.
      model_kwargs: extra keyword arguments for model_fn (e.g. y).
      key: PRNG key, needed only when noise is None.

    Returns:
      dict of (B,) arrays 'loss', 'mse', 'vb' (multiply by importance weights outside, if any).

    Raises:
      ValueError: noise and key both missing, or the model output has the wrong channel count.
    """
    if noise is None:
      if key is None:
        raise ValueError('training_losses: pass noise=... or key=... to draw it.')
      noise = jax.random.normal(key, x_start.shape, x_start.dtype)
    x_t = self.q_sample(x_start, t, noise)
    model_output = self.apply_model(model_fn, x_t, t, model_kwargs)
    return self.losses_from_output(model_output, x_start, t, noise)

  def prior_bpd(self, x_start):
    """KL(q(x_K | x_0) ‖ N(0, I)) in bits per dim, (B,)."""
    t = jnp.full((x_start.shape[0],), self.num_timesteps - 1, jnp.int32)
    mean, _, log_var = self.q_mean_variance(x_start, t)
    return math_utils.mean_flat(math_utils.normal_kl(mean, log_var, 0.0, 0.0)) / _LOG2

  def calc_bpd_loop(self, model_fn, x_start, key, *, clip_denoised=False, model_kwargs=None):
    """Full VLB in bits per dim as one lax.scan over t = K−1, ..., 0 (memory flat in K).

    The noise at scan position i (step t = K−1−i) is normal(fold_in(key, t)).

    Args:
      model_fn: as in training_losses.
      x_start: (B, ..., C) data.
      key: PRNG key.
      clip_denoised: clip x̂_0 to [-1, 1] (official default is True for pixels; False here for latents).
      model_kwargs: extra keyword arguments for model_fn.

    Returns:
      dict 'total_bpd' (B,), 'prior_bpd' (B,), and (B, K) 'vb', 'xstart_mse', 'mse' with column j = step K−1−j
      (the official ordering).
    """
    b = x_start.shape[0]

    def body(_, t_scalar):
      t = jnp.full((b,), t_scalar, jnp.int32)
      noise = jax.random.normal(jax.random.fold_in(key, t_scalar), x_start.shape, x_start.dtype)
      x_t = self.q_sample(x_start, t, noise)
      model_output = self.apply_model(model_fn, x_t, t, model_kwargs)
      terms = self.vb_terms_bpd(model_output, x_start, x_t, t, clip_denoised=clip_denoised)
      eps = self.predict_eps_from_xstart(x_t, t, terms['pred_xstart'])
      return None, (terms['output'], math_utils.mean_flat(jnp.square(terms['pred_xstart'] - x_start)),
                    math_utils.mean_flat(jnp.square(eps - noise)))

    ts = jnp.arange(self.num_timesteps - 1, -1, -1, dtype=jnp.int32)
    _, (vb, xstart_mse, mse) = jax.lax.scan(body, None, ts)
    vb, xstart_mse, mse = vb.T, xstart_mse.T, mse.T
    prior = self.prior_bpd(x_start)
    return {'total_bpd': vb.sum(axis=1) + prior, 'prior_bpd': prior, 'vb': vb,
            'xstart_mse': xstart_mse, 'mse': mse}

  # ------------------------------------------------------------------ samplers (see sampling.py)

  p_sample = sampling.p_sample
  ddim_sample = sampling.ddim_sample
  p_sample_loop = sampling.p_sample_loop
  ddim_sample_loop = sampling.ddim_sample_loop

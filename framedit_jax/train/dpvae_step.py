"""One DP-VAE training step: generator (E_r, D) then 3D patch discriminator, both with optax (VideoDiT Eq. 4).

  L_G = w_recon L_recon + w_reg L_reg + w_lpips L_LPIPS + w_adv * [step >= disc_start] * L_G,hinge
  L_D = [step >= disc_start] * hinge(D(x), D(sg(x_hat)))

Before `disc_start` the discriminator's gradient is exactly zero, so Adam leaves it unchanged; the gate is a
traced value, so one compiled step serves the whole run.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import flax
import jax
import jax.numpy as jnp
import optax

from framedit_jax.parallel.mesh import to_device_memory
from framedit_jax.train.step import accumulate_grads
from framedit_jax.vae import dpvae as dp
from framedit_jax.vae import dpvae_losses as losses


class Weights(NamedTuple):
  recon: float = 1.0
  reg: float = 1.0
  lpips: float = 0.1
  adv: float = 0.01


class DPVAEState(flax.struct.PyTreeNode):
  """Everything a DP-VAE checkpoint restores.

  Attributes:
    step: int32 scalar, completed steps. g_params / g_opt: E_r + D params and optax state.
    d_params / d_opt: discriminator params and optax state. rng: key data; step keys are fold_in(rng, step).
  """
  step: jax.Array
  g_params: Any
  g_opt: Any
  d_params: Any
  d_opt: Any
  rng: jax.Array


def make_optimizers(cfg):
  """(generator, discriminator) optax transforms from `config.dpvae.optim` (AdamW lr 5e-5 in the paper)."""
  g = optax.chain(optax.clip_by_global_norm(cfg.clip_max_norm) if cfg.clip_max_norm else optax.identity(),
                  optax.adamw(cfg.lr, b1=cfg.b1, b2=cfg.b2, weight_decay=cfg.weight_decay))
  d = optax.adam(cfg.disc_lr, b1=cfg.disc_b1, b2=cfg.disc_b2)
  return g, d


def create_state(g_params, d_params, g_tx, d_tx, rng) -> DPVAEState:
  return DPVAEState(step=jnp.zeros([], jnp.int32), g_params=g_params, g_opt=g_tx.init(g_params),
                    d_params=d_params, d_opt=d_tx.init(d_params), rng=jax.random.key_data(rng))


def train_step(state: DPVAEState, key_params, video, *, module: dp.DPVAE, key_module, disc, g_tx, d_tx,
               weights: Weights, disc_start: int, perceptual_fn: Optional[Callable] = None,
               grad_accum_steps: int = 1):
  """One generator + discriminator update on `video` `(B, T, H, W, 3)` in [-1, 1].

  With `grad_accum_steps = k > 1` both gradients are averaged over k equal micro-batches (one `lax.scan`,
  `framedit_jax.train.step.accumulate_grads`); the posterior noise is drawn for the whole batch first and every
  loss is a per-example (or per-logit) mean, so the update equals the one of a single batch up to float
  summation order. The discriminator sees the fakes of the generator before its update, as with k = 1.

  Returns (new state, metrics dict of float32 scalars: loss, recon, reg, reg_key, reg_mu, reg_sigma, lpips,
  g_adv, d_loss, adv_on, grad_norm, finite).
  Raises:
    ValueError: `grad_accum_steps` does not divide the batch (one line).
  """
  rng = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)
  adv_on = (state.step >= disc_start).astype(jnp.float32)
  z_shape = jax.eval_shape(lambda: dp.encode_moments(module, state.g_params, key_module, key_params, video))[0]
  noise = jax.random.normal(rng, z_shape.shape, jnp.float32)  # = distribution.sample's draw for the batch

  def grad_fn(params, video, noise):
    g_params, d_params = params

    def g_loss_fn(g_params):
      out = dp.forward(module, g_params, key_module, key_params, video, noise=noise)
      rec = losses.recon_loss(video, out['x_hat']).mean()
      reg = {k: v.mean() for k, v in losses.reg_loss(out['x_k'], out['x_k_hat'], out['mu_z'], out['sigma_z'],
                                                      out['mu_k'], out['sigma_k']).items()}
      lp = losses.perceptual_loss(perceptual_fn, video, out['x_hat']).mean()
      g_adv = losses.hinge_g_loss(disc.apply({'params': d_params}, out['x_hat']))
      total = (weights.recon * rec + weights.reg * reg['total'] + weights.lpips * lp
               + weights.adv * adv_on * g_adv)
      m = dict(loss=total, recon=rec, reg=reg['total'], reg_key=reg['key'], reg_mu=reg['mu'],
               reg_sigma=reg['sigma'], lpips=lp, g_adv=g_adv)
      return total, (m, out['x_hat'])

    (_, (m, x_hat)), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(g_params)
    fake = jax.lax.stop_gradient(x_hat)

    def d_loss_fn(d_params):
      real_logits = disc.apply({'params': d_params}, video)
      fake_logits = disc.apply({'params': d_params}, fake)
      return adv_on * losses.hinge_d_loss(real_logits, fake_logits)

    d_loss, d_grads = jax.value_and_grad(d_loss_fn)(d_params)
    return (m['loss'], dict(m, d_loss=d_loss)), (g_grads, d_grads)

  (g_grads, d_grads), metrics = accumulate_grads(grad_fn, (state.g_params, state.d_params), (video, noise),
                                                 grad_accum_steps)
  # config.train.host_offload: the optimizer states come from host memory only once the gradients exist
  g_opt_in, d_opt_in = to_device_memory((state.g_opt, state.d_opt), after=(g_grads, d_grads))
  g_updates, g_opt = g_tx.update(g_grads, g_opt_in, state.g_params)
  g_params = optax.apply_updates(state.g_params, g_updates)
  d_updates, d_opt = d_tx.update(d_grads, d_opt_in, state.d_params)
  d_params = optax.apply_updates(state.d_params, d_updates)

  grad_norm = optax.global_norm(g_grads)
  finite = jnp.isfinite(metrics['loss']) & jnp.isfinite(grad_norm) & jnp.isfinite(metrics['d_loss'])
  metrics = dict(metrics, adv_on=adv_on, grad_norm=grad_norm, finite=finite.astype(jnp.float32))
  new = state.replace(step=state.step + 1, g_params=g_params, g_opt=g_opt, d_params=d_params, d_opt=d_opt)
  return new, metrics

"""The T2V EMA schedule against the official train_t2v_accelerate.py rule (closed form, numpy)."""

import jax.numpy as jnp
import numpy as np

from framedit_jax.train.state import ema_update_every


def _official(params_seq, every, decay):
  """train_t2v_accelerate.py: after step k's update, `if k % every == 0: ema.lerp_(p, 1 - decay ** every)`."""
  ema = params_seq[0].copy()
  out = []
  for k, p in enumerate(params_seq[1:]):
    if k % every == 0:
      ema = ema + (1 - decay ** every) * (p - ema)
    out.append(ema.copy())
  return out


def test_ema_update_every_matches_official_phase_and_decay():
  rng = np.random.default_rng(0)
  seq = [rng.standard_normal(5) for _ in range(10)]  # initial params, then the params after each of 9 updates
  for every in (1, 3, 4):
    want = _official(seq, every, 0.8)
    ema = {'w': jnp.asarray(seq[0])}
    for k, p in enumerate(seq[1:]):
      ema = ema_update_every(ema, {'w': jnp.asarray(p)}, jnp.int32(k), every, 0.8)
      np.testing.assert_allclose(np.asarray(ema['w']), want[k], rtol=1e-6, atol=1e-6, err_msg=f'every={every} k={k}')

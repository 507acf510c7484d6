"""Sampling a trained or converted model to a folder of mp4s: class-conditional, unconditional and text-to-video.

One entry point, `sample_to_dir`, used by `launch/sample.py`. The config comes from the run (`run_config`: the
config saved with the latest checkpoint of `--workdir`) unless one is given. Every model samples through the one
path, `generate.Sampler` (`config.sample.sampler`, `num_steps`, `cfg_scale`), and videos are streamed to disk one
batch at a time (memory is one batch, whatever `num_samples` is).

Text-to-video weights: a `--checkpoint`, or the export a T2V run records in `<workdir>/t2v_run.json`
(`checkpoint`; `<workdir>/checkpoint` without it), in the converted format of `framedit_jax.convert.checkpoint_io`
(orbax params plus `framedit_model.json` with the model name and sizes); the text encoder is `config.text.root`
(or the run's `t2v_run.json` `text_root`).
"""

from __future__ import annotations

import json
import os
import re
from typing import Iterator

import jax
import numpy as np

from framedit_jax.train import generate as gen

T2V_RUN_FILE = 't2v_run.json'


def is_text_to_video(config) -> bool:
  """Whether ``config.task`` is 't2v' or ``config.model.name`` a text-to-video model (``framedit_jax.models.t2v``)."""
  from framedit_jax.models.t2v import T2V_MODELS  # pylint: disable=g-import-not-at-top
  return config.get('task', None) == 't2v' or config.model.name in T2V_MODELS


def run_config(workdir: str | None = None, checkpoint: str | None = None):
  """The config saved with the latest checkpoint of the training run ``workdir``.

  Raises:
    FileNotFoundError: no saved config (one line asking for ``--config``).
  """
  import ml_collections  # pylint: disable=g-import-not-at-top
  from framedit_jax.train import checkpoint as ckpt_lib  # pylint: disable=g-import-not-at-top
  if workdir and os.path.isdir(ckpt_lib.checkpoint_dir(workdir)):
    ckpt = ckpt_lib.Checkpointer(ckpt_lib.checkpoint_dir(workdir), async_save=False)
    try:
      saved = ckpt.restore_config() if ckpt.latest_step() is not None else {}
    finally:
      ckpt.close()
    if saved:
      return ml_collections.ConfigDict(saved)
  where = f'--workdir {workdir} holds no saved config' if workdir else f'--checkpoint {checkpoint} holds no config'
  raise FileNotFoundError(f'{where}; pass --config=configs/<the run\'s config>.py.')


def _write_batches(batches: Iterator[tuple[list[str], np.ndarray]], out_dir: str, fps: int, total: int,
                   save_npy: bool) -> list[str]:
  """Writes each ``(names, videos (n, T, H, W, 3) in [-1, 1])`` batch as it comes, then grid.mp4 and strip.png
  of the first 16 videos."""
  os.makedirs(out_dir, exist_ok=True)
  paths, grid = [], []
  for names, videos in batches:
    for name, v in zip(names, videos):
      paths.append(gen.write_mp4(os.path.join(out_dir, f'{name}.mp4'), v, fps))
      if save_npy:
        np.save(os.path.join(out_dir, f'{name}.npy'), gen.to_uint8(v))
    if len(grid) < 16:
      grid.extend(list(videos[:16 - len(grid)]))
    print(f'sampled {len(paths)}/{total} videos -> {out_dir}', flush=True)
  gen.write_mp4(os.path.join(out_dir, 'grid.mp4'), gen.video_grid(np.stack(grid)), fps)
  gen.write_png(os.path.join(out_dir, 'strip.png'), gen.frame_strip(np.stack(grid)))
  return paths


def _class_batches(config, workdir, checkpoint, num_samples, batch_size, labels, key):
  from framedit_jax.train.experiment import Experiment  # pylint: disable=g-import-not-at-top
  exp = Experiment(config)
  params = exp.load_params(workdir, checkpoint)
  nc = int(config.model.num_classes)
  if nc > 0:
    labels = np.resize(np.asarray(labels if labels is not None else np.arange(num_samples) % nc), num_samples)
  for b, start in enumerate(range(0, num_samples, batch_size)):
    n = min(batch_size, num_samples - start)
    y = np.resize(labels[start:start + n], batch_size) if nc > 0 else None  # one compiled shape
    videos = exp.generate(params, jax.random.fold_in(key, b), batch_size, labels=y)[:n]
    yield [f'{start + i:06d}' for i in range(n)], videos


def load_text_to_video(config, workdir: str | None = None, checkpoint: str | None = None):
  """``(module, params, latent_shape (T, h, w, C), text_root)`` of a T2V checkpoint.

  Raises:
    FileNotFoundError: no checkpoint, or no model metadata in it (one line).
  """
  from framedit_jax.convert import checkpoint_io  # pylint: disable=g-import-not-at-top
  from framedit_jax.models.t2v import get_t2v_model  # pylint: disable=g-import-not-at-top
  run_file = os.path.join(workdir or '', T2V_RUN_FILE)
  run = {}
  if workdir and os.path.isfile(run_file):  # the export record a T2V training run writes
    with open(run_file) as f:
      run = json.load(f)
  path = checkpoint or run.get('checkpoint') or os.path.join(workdir, 'checkpoint')
  if not os.path.isfile(os.path.join(path, checkpoint_io.META_FILE)):
    raise FileNotFoundError(f'{path} is not a text-to-video checkpoint (no {checkpoint_io.META_FILE}); pass '
                            f'--checkpoint=<a converted or exported T2V checkpoint>.')
  params, meta = checkpoint_io.load_params(path)
  o = meta.get('overrides', {})
  module = get_t2v_model(meta.get('model_name', config.model.name), **o)
  latent_shape = (int(o['video_length']), int(o['sample_size']), int(o['sample_size']), int(o['in_channels']))
  root = config.text.root or run.get('text_root', '')
  return module, params, latent_shape, root


def _text_batches(config, workdir, checkpoint, prompts, batch_size, key):
  from framedit_jax.text import TextEncoder  # pylint: disable=g-import-not-at-top
  from framedit_jax.vae.loader import load_vae  # pylint: disable=g-import-not-at-top
  module, params, latent_shape, root = load_text_to_video(config, workdir, checkpoint)
  vae = load_vae(config.vae)
  encoder = TextEncoder.from_pretrained(root, int(config.text.max_length), dtype='float32')
  sampler = gen.Sampler(gen.text_apply_fn(module), config, latent_shape[-1])
  for b, start in enumerate(range(0, len(prompts), batch_size)):
    batch = list(prompts[start:start + batch_size])
    n = len(batch)
    cond, null_cond = gen.text_condition(encoder, list(np.resize(np.asarray(batch, object), batch_size)),
                                         config.sample.cfg_scale)
    videos = gen.generate(sampler, params, jax.random.fold_in(key, b), (batch_size,) + latent_shape, cond, null_cond,
                          vae=None if config.vae.name == 'identity' else vae)[:n]
    yield [f'{start + i:06d}-{_slug(p)}' for i, p in enumerate(batch)], videos


def _slug(prompt: str) -> str:
  return re.sub(r'[^A-Za-z0-9]+', '_', prompt).strip('_')[:60] or 'prompt'


def sample_to_dir(config, out_dir: str, *, workdir: str | None = None, checkpoint: str | None = None,
                  num_samples: int | None = None, batch_size: int | None = None, labels=None,
                  prompts: list[str] | None = None, seed: int = 0, save_npy: bool = False) -> list[str]:
  """Samples videos in batches and streams them to ``out_dir`` as numbered mp4s + ``grid.mp4`` + ``strip.png``.

  Args:
    config: the run config (``run_config(workdir)`` for a training run); ``sample.*`` picks the sampler.
    out_dir: destination; class/unconditional files ``000000.mp4, ...``, text-to-video files
      ``000000-<prompt slug>.mp4, ...``; ``grid.mp4`` and ``strip.png`` hold the first 16 videos.
    workdir / checkpoint: where the weights come from (``Experiment.load_params``; ``load_text_to_video``).
    num_samples, batch_size: default ``config.sample.num_samples`` / ``config.sample.batch_size`` (a text model
      samples one video per prompt).
    labels: int class labels (cycled) for class-conditional models; default ``arange % num_classes``.
    prompts: text-to-video prompts (default ``config.sample.prompts``).
    seed: batch ``i`` uses ``fold_in(PRNGKey(seed), i)``.
    save_npy: also write each video losslessly as ``<name>.npy``, uint8 ``(T, H, W, 3)``.

  Returns:
    The written per-video mp4 paths.

  Raises:
    ValueError: prompts for a class model, or a text model without prompts (one line).
  """
  from framedit_jax.diffusion.samplers import validate_sample_config  # pylint: disable=g-import-not-at-top
  validate_sample_config(config)  # before any weights are read
  key = jax.random.PRNGKey(seed)
  batch_size = int(batch_size or config.sample.batch_size)
  if is_text_to_video(config):
    prompts = list(prompts or config.sample.get('prompts', ()))
    if not prompts:
      raise ValueError('no prompts: pass --prompt "..." or --prompts_file with one prompt per line.')
    batches = _text_batches(config, workdir, checkpoint, prompts, min(batch_size, len(prompts)), key)
    total = len(prompts)
  else:
    if prompts:
      raise ValueError(f'--prompt/--prompts_file given, but config.model.name={config.model.name!r} is not a '
                       'text-to-video model.')
    total = int(num_samples or config.sample.num_samples)
    batches = _class_batches(config, workdir, checkpoint, total, batch_size, labels, key)
  return _write_batches(batches, out_dir, int(config.sample.fps), total, save_npy)


def read_prompts(prompts: list[str] | None = None, prompts_file: str | None = None) -> list[str]:
  """``prompts`` plus the non-empty lines of ``prompts_file``.

  Raises:
    FileNotFoundError: ``prompts_file`` missing (one line).
  """
  out = list(prompts or [])
  if prompts_file:
    if not os.path.isfile(prompts_file):
      raise FileNotFoundError(f'--prompts_file {prompts_file} not found.')
    with open(prompts_file, encoding='utf-8') as f:
      out += [ln.strip() for ln in f if ln.strip()]
  return out


__all__ = ['is_text_to_video', 'load_text_to_video', 'read_prompts', 'run_config', 'sample_to_dir']

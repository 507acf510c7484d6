"""The T2V demo config trains on the one trainer (captions -> tiny T5 -> text cache -> LatteT2V), resumes, exports
and renders a prompt."""

import json
import os

import numpy as np

from configs import t2v_demo
from framedit_jax.text.cache import load_text_cache
from framedit_jax.train.loop import train_and_evaluate
from framedit_jax.train.sample_run import run_config, sample_to_dir


def test_t2v_demo_two_steps_and_sample(tmp_path, capsys):
  config = t2v_demo.get_config()
  config.train.num_steps = 1
  config.train.ckpt_every = 1
  config.data.global_batch_size = 2
  config.sample.num_steps = 2
  work = str(tmp_path / 'run')
  assert int(train_and_evaluate(config, work).step) == 1
  config.train.num_steps = 2  # same workdir: resumes from the step-1 checkpoint and runs one more step
  state = train_and_evaluate(config, work)
  assert int(state.step) == 2
  assert 'Resuming from checkpoint at step 1' in capsys.readouterr().out
  run = json.load(open(tmp_path / 'run' / 't2v_run.json'))
  assert run['latent_channels'] == 3 and run['num_frames'] == 8
  cache = load_text_cache(str(tmp_path / 'run' / 'text_cache.npz'))
  assert set(c for _, c in config.data.demo_captions) <= set(cache.captions)
  emb, _ = cache.lookup(cache.captions)
  assert np.abs(emb[0] - emb[1]).max() > 1e-3  # captions get different embeddings
  assert np.abs(emb[0] - cache.null_embedding.astype(np.float32)).max() > 1e-3
  saved = run_config(work)  # what launch/sample.py --workdir uses without --config
  assert saved.model.name == config.model.name and saved.sample.num_steps == 2
  saved.sample.cfg_scale = 4.0
  paths = sample_to_dir(saved, str(tmp_path / 'out'), workdir=work, prompts=['a big cartoon rabbit in a green meadow'])
  assert len(paths) == 1 and os.path.getsize(paths[0]) > 0
  import imageio.v3 as iio
  frames = iio.imread(paths[0], plugin='pyav')
  assert frames.shape[0] == 8 and frames.shape[1:3] == (32, 32)

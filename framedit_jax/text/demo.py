"""A tiny randomly initialised T5 text encoder for demos and tests (no pretrained T5 is reachable offline).

`make_demo_text_encoder(captions, root)` writes a Latte-1-like layout that every loader here reads:
  root/tokenizer/spiece.model          sentencepiece unigram model trained on the captions (pad 0, eos 1, unk 2)
  root/text_encoder/config.json        T5 v1.1 config (gated-gelu)
  root/text_encoder/model.safetensors  random weights under transformers key names
Its embeddings are deterministic features that differ per prompt, which is all a demo needs for conditioning;
they carry no pretrained language knowledge.
"""

from __future__ import annotations

import json
import os
from typing import Sequence

import jax
import jax.numpy as jnp

from framedit_jax.text.convert import t5_params_to_hf
from framedit_jax.text.t5 import T5Config, T5Encoder


def make_demo_text_encoder(captions: Sequence[str], root: str, d_model: int = 32, num_layers: int = 2,
                           num_heads: int = 4, vocab_size: int = 96, seed: int = 0) -> str:
  """Writes the tokenizer and encoder folders under `root` (kept if already there); returns `root`."""
  import sentencepiece as spm  # pylint: disable=g-import-not-at-top
  tok_dir, enc_dir = os.path.join(root, 'tokenizer'), os.path.join(root, 'text_encoder')
  if os.path.isfile(os.path.join(tok_dir, 'spiece.model')) and os.path.isfile(os.path.join(enc_dir, 'config.json')):
    return root
  os.makedirs(tok_dir, exist_ok=True)
  os.makedirs(enc_dir, exist_ok=True)
  text = [str(c) for c in captions if str(c).strip()] * 4
  spm.SentencePieceTrainer.train(sentence_iterator=iter(text), model_prefix=os.path.join(tok_dir, 'spiece'),
                                 vocab_size=vocab_size, pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
                                 hard_vocab_limit=False, minloglevel=2)
  cfg = T5Config(vocab_size=vocab_size, d_model=d_model, d_kv=d_model // num_heads, d_ff=2 * d_model,
                 num_layers=num_layers, num_heads=num_heads)
  params = T5Encoder(cfg).init(jax.random.key(seed), jnp.zeros((1, 4), jnp.int32))['params']
  from safetensors.numpy import save_file  # pylint: disable=g-import-not-at-top
  save_file(t5_params_to_hf(params, cfg), os.path.join(enc_dir, 'model.safetensors'))
  with open(os.path.join(enc_dir, 'config.json'), 'w') as f:
    json.dump(dict(model_type='t5', feed_forward_proj='gated-gelu', vocab_size=vocab_size, d_model=d_model,
                   d_kv=cfg.d_kv, d_ff=cfg.d_ff, num_layers=num_layers, num_heads=num_heads,
                   relative_attention_num_buckets=32, relative_attention_max_distance=128,
                   layer_norm_epsilon=1e-6), f, indent=2)
  return root

"""Flax T5 v1.1 encoder vs transformers' PyTorch `T5EncoderModel` (random weights), tokenizer, folder errors."""

import json
import os

import numpy as np
import pytest

from framedit_jax.text import T5Tokenizer, TextEncoder, convert_t5_state_dict
from framedit_jax.text.t5 import T5Config, relative_position_bucket

SENTENCES = ['a cat walks on the grass', 'waves crash on a rocky shore at sunset', 'a red car drives down a road',
             'people walk through a busy street', 'the camera pans over a snowy mountain', 'a dog runs on the beach',
             'slow motion of rain falling on leaves', 'a person types on a laptop keyboard']


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
  """A tiny Latte-1-like root: tokenizer/spiece.model (trained here) + text_encoder/ from transformers."""
  import sentencepiece as spm
  import torch
  import transformers
  root = tmp_path_factory.mktemp('t2v_ckpt')
  (root / 'tokenizer').mkdir()
  spm.SentencePieceTrainer.train(sentence_iterator=iter(SENTENCES * 4), model_prefix=str(root / 'tokenizer' / 'spiece'),
                                 vocab_size=60, pad_id=0, eos_id=1, unk_id=2, bos_id=-1, model_type='unigram',
                                 minloglevel=2)
  cfg = transformers.T5Config(vocab_size=64, d_model=32, d_kv=8, d_ff=48, num_layers=2, num_heads=4,
                              feed_forward_proj='gated-gelu', relative_attention_num_buckets=32,
                              relative_attention_max_distance=128, dropout_rate=0.0, tie_word_embeddings=False)
  torch.manual_seed(0)
  model = transformers.T5EncoderModel(cfg).eval()
  with torch.no_grad():
    for name, p in model.named_parameters():
      if 'layer_norm' in name:
        p.copy_(1.0 + 0.2 * torch.randn_like(p))
      else:
        p.copy_(torch.randn_like(p) * (1.0 if 'shared' in name or 'relative' in name else p.shape[-1] ** -0.5))
  model.save_pretrained(str(root / 'text_encoder'), safe_serialization=True)
  return root, model


def test_relative_buckets_match_transformers():
  import torch
  from transformers.models.t5.modeling_t5 import T5Attention
  rel = np.arange(-300, 301)
  ref = T5Attention._relative_position_bucket(torch.from_numpy(rel), bidirectional=True, num_buckets=32,
                                              max_distance=128).numpy()
  np.testing.assert_array_equal(relative_position_bucket(rel, 32, 128), ref)


def test_t5_encoder_matches_transformers(checkpoint):
  import torch
  root, model = checkpoint
  enc = TextEncoder.from_pretrained(str(root), max_length=40, dtype='float32', chunk_size=2)
  rng = np.random.default_rng(0)
  ids = rng.integers(0, 64, size=(3, 40)).astype(np.int32)
  mask = np.ones((3, 40), np.int32)
  mask[1, 25:] = 0  # padding
  mask[2, 7:] = 0
  with torch.no_grad():
    ref = model(input_ids=torch.from_numpy(ids).long(), attention_mask=torch.from_numpy(mask).long())
  ref = ref.last_hidden_state.numpy()
  ours = enc.encode_ids(ids, mask)  # 2 chunks, the second padded
  assert np.abs(ref).max() > 0.5
  np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-4)
  bf16 = TextEncoder(enc.tokenizer, enc.config, enc.params, dtype='bfloat16', chunk_size=4).encode_ids(ids, mask)
  err = np.abs(bf16 - ref)[mask.astype(bool)]
  assert err.max() < 0.15 and err.mean() < 0.02, (err.max(), err.mean())


def test_tokenizer_matches_sentencepiece_t5_rules(checkpoint):
  import sentencepiece as spm
  root, _ = checkpoint
  tok = T5Tokenizer(str(root / 'tokenizer'), max_length=32)
  sp = spm.SentencePieceProcessor(model_file=str(root / 'tokenizer' / 'spiece.model'))
  ids, mask = tok(['a cat walks', 'waves crash on a rocky shore'])
  for row, text in zip(range(2), ['a cat walks', 'waves crash on a rocky shore']):
    expect = sp.encode(text) + [1]
    np.testing.assert_array_equal(ids[row, :len(expect)], expect)
    assert (ids[row, len(expect):] == 0).all() and mask[row].sum() == len(expect)
  long = ' '.join(SENTENCES)
  with pytest.warns(UserWarning, match='truncated to 32 tokens'):
    ids, mask = tok(long)
  np.testing.assert_array_equal(ids[0], sp.encode(long)[:31] + [1])
  assert mask.sum() == 32


def test_tokenizer_matches_transformers_t5tokenizer(checkpoint):
  import transformers
  root, _ = checkpoint
  ref_tok = transformers.T5Tokenizer.from_pretrained(str(root / 'tokenizer'), extra_ids=0)
  prompts = ['a dog runs on the beach', 'slow motion of rain', ' '.join(SENTENCES)]
  ref = ref_tok(prompts, padding='max_length', max_length=24, truncation=True)
  with pytest.warns(UserWarning):
    ids, mask = T5Tokenizer(str(root / 'tokenizer'), max_length=24)(prompts)
  np.testing.assert_array_equal(ids, np.asarray(ref['input_ids']))
  np.testing.assert_array_equal(mask, np.asarray(ref['attention_mask']))


def test_missing_folders_and_bad_keys(tmp_path, checkpoint):
  root, model = checkpoint
  with pytest.raises(FileNotFoundError, match='tokenizer'):
    TextEncoder.from_pretrained(str(tmp_path))
  (tmp_path / 'tokenizer').mkdir()
  with pytest.raises(FileNotFoundError, match='text_encoder'):
    TextEncoder.from_pretrained(str(tmp_path))
  with pytest.raises(FileNotFoundError, match='spiece.model'):
    T5Tokenizer(str(tmp_path / 'tokenizer'))
  cfg = T5Config.from_dict(json.load(open(os.path.join(root, 'text_encoder', 'config.json'))))
  sd = {k: v.numpy() for k, v in model.state_dict().items()}
  del sd['encoder.block.1.layer.1.DenseReluDense.wo.weight']
  sd['encoder.extra.weight'] = np.zeros(2, np.float32)
  with pytest.raises(ValueError, match=r'missing.*block\.1\.layer\.1\.DenseReluDense\.wo.*unexpected.*extra'):
    convert_t5_state_dict(sd, cfg)

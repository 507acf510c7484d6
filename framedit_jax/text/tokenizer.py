"""T5 tokenizer from a checkpoint's own `tokenizer/spiece.model`, with sentencepiece.

Behaviour of transformers' `T5Tokenizer(prompt, padding='max_length', max_length=L, truncation=True)` as the
official Latte pipeline (`pipeline/pipeline_latte.py`, L = 120) calls it: sentencepiece ids, then `</s>`
(id 1); sequences longer than L are cut to L - 1 ids plus `</s>` (with a warning naming the dropped text);
then padded with `<pad>` (id 0). The attention mask is 1 on the ids and `</s>`, 0 on padding.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

DEFAULT_MAX_LENGTH = 120  # Latte-1 / PixArt-alpha


class T5Tokenizer:
  """sentencepiece T5 tokenizer.

  Args:
    path: a `tokenizer/` folder holding `spiece.model`, or the `.model` file itself.
    max_length: token limit L (including `</s>`).

  Raises:
    FileNotFoundError: no `spiece.model` there (one line naming the folder expected).
  """

  def __init__(self, path: str, max_length: int = DEFAULT_MAX_LENGTH):
    import sentencepiece as spm  # pylint: disable=g-import-not-at-top
    model = os.path.join(path, 'spiece.model') if os.path.isdir(path) else path
    if not os.path.isfile(model):
      raise FileNotFoundError(f'tokenizer {model} not found; pass the checkpoint\'s `tokenizer/` folder holding '
                              'spiece.model (e.g. Latte-1/tokenizer).')
    self.sp = spm.SentencePieceProcessor(model_file=model)
    self.max_length = int(max_length)
    self.pad_id = self.sp.pad_id() if self.sp.pad_id() >= 0 else 0
    self.eos_id = self.sp.eos_id() if self.sp.eos_id() >= 0 else 1

  def __call__(self, prompts: str | list[str], max_length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Tokenises prompts.

    Args:
      prompts: a string or a list of B strings.
      max_length: overrides the limit L.

    Returns:
      `(input_ids, attention_mask)`, both int32 `(B, L)`.
    """
    if isinstance(prompts, str):
      prompts = [prompts]
    length = int(max_length or self.max_length)
    ids = np.full((len(prompts), length), self.pad_id, np.int32)
    mask = np.zeros((len(prompts), length), np.int32)
    for i, text in enumerate(prompts):
      toks = list(self.sp.encode(text))
      if len(toks) > length - 1:
        dropped = self.sp.decode(toks[length - 1:])
        warnings.warn(f'prompt {i} truncated to {length} tokens; dropped: {dropped!r}', stacklevel=2)
        toks = toks[:length - 1]
      toks.append(self.eos_id)
      ids[i, :len(toks)] = toks
      mask[i, :len(toks)] = 1
    return ids, mask

"""Text conditioning for text-to-video: a Flax T5 v1.1 encoder, its converter and tokenizer."""

from framedit_jax.text.convert import convert_t5_state_dict, load_t5_encoder, read_t5_config
from framedit_jax.text.encode import TextEncoder
from framedit_jax.text.t5 import T5Config, T5Encoder
from framedit_jax.text.tokenizer import T5Tokenizer

__all__ = ['T5Config', 'T5Encoder', 'T5Tokenizer', 'TextEncoder', 'convert_t5_state_dict', 'load_t5_encoder',
           'read_t5_config']

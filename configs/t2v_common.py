"""Fields every text-to-video config adds to configs/default.py (model, text encoder, LoRA, sampling)."""

import ml_collections

from configs import common
from configs import default


def get_config(arg: str | None = None):
  common.parse_arg(arg, {}, 'configs/t2v_common.py')  # takes no config argument
  config = default.get_config()
  config.task = 't2v'
  config.model.name = 'LatteT2V'  # or 'FrameDiTHT2V-XL/256-2-1-2-concat'
  config.model.init_from = ''  # diffusers `transformer/` folder to start from (Latte-1)
  config.data.dataset = 'text_video_folder'
  config.data.builder_config = 's256'
  config.data.demo_captions = ()  # ((sample clip file, caption), ...) (demo only)

  config.text = t = ml_collections.ConfigDict()
  t.root = ''  # folder with tokenizer/ (spiece.model) and text_encoder/ (T5 config.json + weights)
  t.demo = False  # True: a tiny random T5 + sentencepiece trained on the captions (no download)
  t.max_length = 120  # Latte-1 / PixArt-alpha token limit
  t.dtype = 'bfloat16'
  t.chunk_size = 8
  t.caption_dropout = 0.1  # caption -> null ("") embedding, for classifier-free guidance
  # T5 output cache (.npz): '' = beside the latent cache (data.use_latents) or <workdir>/text_cache.npz
  t.cache = ''

  config.lora = lo = ml_collections.ConfigDict()
  lo.enabled = False
  lo.rank = 32
  lo.alpha = 32.0
  lo.target_modules = ('to_q', 'to_k', 'to_v', 'to_out.0')

  config.optim.ema_update_every = 1
  config.sample.sampler = 'dpmpp_2m'  # 'ddpm' | 'ddim' | 'euler' | 'dpmpp_2m'
  config.sample.num_steps = 50
  config.sample.cfg_scale = 7.5
  config.sample.prompts = ('Sunset over the sea.',)
  return config

"""Demo: Latte-S/4 initialised from an image DiT (Latte §3.3.4), end to end on a small random DiT.

  python tools/make_random_dit.py --model=DiT-S/4 --out=/tmp/dit_random.safetensors \
      --hidden_size=128 --depth=4 --num_heads=4 --input_size=32 --in_channels=3
  python launch/init_from_image_dit.py --src=/tmp/dit_random.safetensors --model=Latte-S/4 \
      --out=/tmp/latte_from_dit --override=hidden_size=128 --override=depth=4 --override=num_heads=4 \
      --override=num_frames=10
  python launch/train.py --config=configs/demo_image_dit.py:init_from=/tmp/latte_from_dit --workdir=/tmp/latte_dit_demo

The demo's data (sample_videos, 32x32 pixel clips of 10 frames) and schedule; with a real `DiT-XL-2-256x256.pt`
use `--model=Latte-XL/2` and a 256x256 latent config (e.g. configs/taichi256.py) instead.
"""

from configs import common
from configs import demo


def get_config(arg: str | None = None):
  """The demo config with Latte-S/4. Config argument: `init_from=DIR`, the init tool's --out."""
  init_from = common.parse_arg(arg, {'init_from': str}, 'configs/demo_image_dit.py').get('init_from')
  config = demo.with_iddpm(demo.get_config())  # IDDPM, as DiT was trained
  config.model.name = 'Latte-S/4'
  config.model.overrides.hidden_size = 128
  config.model.overrides.depth = 4
  config.model.overrides.num_heads = 4
  config.model.init_from = init_from or None  # written by launch/init_from_image_dit.py (see above)
  return config

"""Writes a random image DiT in the official `DiT-XL-2-256x256.pt` layout (demo / tests of init-from-DiT).

    python tools/make_random_dit.py --model=DiT-S/4 --out=/tmp/dit_random.safetensors \
        --hidden_size=128 --depth=4 --num_heads=4 --input_size=32 --in_channels=3

Every parameter is drawn N(0, 0.02) (so no block is the identity, unlike a fresh adaLN-Zero init); the file holds
the official key names and the frozen `pos_embed`. `.safetensors` needs no torch; `.pt` is written with torch.save.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def make_random_dit(name, seed=0, **overrides):
  """Official-layout state_dict (numpy) of a random `get_image_dit(name, **overrides)`."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from framedit_jax.convert.image_dit import export_dit_state_dict  # pylint: disable=g-import-not-at-top
  from framedit_jax.models.image_dit import get_image_dit  # pylint: disable=g-import-not-at-top
  module = get_image_dit(name, **overrides)
  x = jnp.zeros((1, module.input_size, module.input_size, module.in_channels))
  y = jnp.zeros((1,), jnp.int32) if module.num_classes > 0 else None
  params = module.init({'params': jax.random.PRNGKey(seed)}, x, jnp.zeros((1,), jnp.int32), y)['params']
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.PRNGKey(seed + 1), len(leaves))
  params = jax.tree.unflatten(tree, [0.02 * jax.random.normal(k, l.shape) for k, l in zip(keys, leaves)])
  return export_dit_state_dict(params, module.input_size)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--model', default='DiT-S/4')
  parser.add_argument('--out', required=True, help='.safetensors or .pt')
  parser.add_argument('--seed', type=int, default=0)
  for k in ('hidden_size', 'depth', 'num_heads', 'input_size', 'in_channels', 'num_classes'):
    parser.add_argument(f'--{k}', type=int, default=None)
  args = parser.parse_args(argv)
  overrides = {k: getattr(args, k) for k in ('hidden_size', 'depth', 'num_heads', 'input_size', 'in_channels',
                                             'num_classes') if getattr(args, k) is not None}
  sd = make_random_dit(args.model, args.seed, **overrides)
  if args.out.endswith('.safetensors'):
    from safetensors.numpy import save_file  # pylint: disable=g-import-not-at-top
    save_file(sd, args.out)
  else:
    import torch  # pylint: disable=g-import-not-at-top
    torch.save({k: torch.from_numpy(v) for k, v in sd.items()}, args.out)
  print(f'wrote {args.out}: random {args.model} {overrides}, {len(sd)} tensors')


if __name__ == '__main__':
  main()

"""Latte / FrameDiT initialised from an image DiT (Latte §3.3.4): the tool, its report, and 2 training steps."""

import importlib.util
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from framedit_jax.convert.init_from_image_dit import write_init_checkpoint

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

ARCH = dict(hidden_size=32, depth=2, num_heads=2)
MATRIX = dict(qk_col_dim=8, v_col_dim=32, num_col_heads=4)


def _load(rel):
  spec = importlib.util.spec_from_file_location(rel.replace('/', '_')[:-3], os.path.join(REPO, rel))
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod


@pytest.fixture(scope='module')
def dit_file(tmp_path_factory):
  """A random class-conditional DiT-S/2 (10 classes, 3 channels, 8x8) in the official layout (.safetensors)."""
  from safetensors.numpy import save_file
  sd = _load('tools/make_random_dit.py').make_random_dit('DiT-S/2', seed=3, input_size=8, in_channels=3,
                                                           num_classes=10, **ARCH)
  path = tmp_path_factory.mktemp('dit') / 'DiT-S-2-random.safetensors'
  save_file(sd, str(path))
  return str(path), sd


def _leaf(tree, path):
  for k in path.split('/'):
    tree = tree[k]
  return np.asarray(tree)


@pytest.mark.parametrize('model,extra,temporal_init', [
    ('Latte-S/2', {}, 'dit'),
    ('FrameDiTG-S/64-256/2', MATRIX, 'dit'),
    ('FrameDiTH-S/64-256/2-concat', MATRIX, 'fresh'),
])
def test_tool_copies_adapts_and_reports(dit_file, tmp_path, model, extra, temporal_init):
  from framedit_jax.convert.image_dit import convert_dit_state_dict
  from framedit_jax.models import get_model
  path, sd = dit_file
  out, report = write_init_checkpoint(path, model, str(tmp_path / 'init'), temporal_init=temporal_init, seed=5,
                         overrides=dict(num_frames=4, num_classes=3, **ARCH, **extra))
  saved = json.load(open(os.path.join(out, 'init_report.json')))
  assert saved['copied'] == report['copied'] and saved['dit'] == 'DiT-S/2'
  from framedit_jax.convert.checkpoint_io import load_params
  params, meta = load_params(out)
  assert meta['model_name'] == model and meta['overrides']['in_channels'] == 3
  dit = convert_dit_state_dict(sd, 'DiT-S/2', **ARCH)
  # the 1000-class table (here 11 rows) is dropped; the video label table (3 + null) starts at zero
  assert 'y_embedder' in report['dropped']
  table = _leaf(params, 'y_embedder/embedding_table/embedding')
  assert table.shape == (4, 32) and not table.any()
  # embedders, final layer and spatial blocks are the DiT's, by official key name
  for p in ('x_embedder/proj/kernel', 't_embedder/mlp_2/kernel', 'final_layer/linear/kernel',
            'blocks_0/attn/qkv/kernel', 'blocks_0/mlp/fc2/bias', 'blocks_0/adaLN_modulation/kernel'):
    np.testing.assert_array_equal(_leaf(params, p), _leaf(dit, p))
  for p in ('x_embedder', 't_embedder', 'final_layer', 'blocks_0'):
    assert p in report['copied']
  assert any(a.startswith('pos_embed') for a in report['adapted'])
  # temporal blocks: official name matching takes DiT block i's matching leaves; the rest is the fresh init
  video = get_model(model, input_size=8, in_channels=3, num_frames=4, num_classes=3, **ARCH, **extra)
  fresh = video.init({'params': jax.random.PRNGKey(5)}, jnp.zeros((1, 4, 8, 8, 3)), jnp.zeros((1,), jnp.int32),
                     jnp.zeros((1,), jnp.int32))['params']
  if temporal_init == 'fresh':
    np.testing.assert_array_equal(_leaf(params, 'blocks_1/adaLN_modulation/kernel'), 0.0)  # adaLN-Zero kept
    assert 'blocks_1' in report['fresh']
  elif model.startswith('Latte'):
    np.testing.assert_array_equal(_leaf(params, 'blocks_1/attn/qkv/kernel'), _leaf(dit, 'blocks_1/attn/qkv/kernel'))
    assert 'blocks_1' in report['copied']
  else:
    np.testing.assert_array_equal(_leaf(params, 'blocks_1/mlp/fc1/kernel'), _leaf(dit, 'blocks_1/mlp/fc1/kernel'))
    np.testing.assert_array_equal(_leaf(params, 'blocks_1/attn/linear_q/u'), _leaf(fresh, 'blocks_1/attn/linear_q/u'))
    assert 'blocks_1/attn' in report['fresh'] and 'blocks_1/mlp' in report['copied']
  assert report['counts']['copied'] + report['counts']['fresh'] == sum(x.size for x in jax.tree.leaves(fresh))


def test_mismatched_dit_is_a_one_line_error(dit_file, tmp_path):
  from framedit_jax.convert.init_from_image_dit import init_from_dit_state_dict
  _, sd = dit_file
  with pytest.raises(ValueError, match='hidden_size: DiT 32 != video 64'):
    init_from_dit_state_dict(sd, 'Latte-S/2', dit_overrides=ARCH, hidden_size=64, num_heads=2, depth=2)
  with pytest.raises(FileExistsError):
    write_init_checkpoint(dit_file[0], 'Latte-S/2', str(tmp_path), overrides=ARCH)


def test_launcher_writes_a_videodit_equal_to_the_official_dit_on_identical_frames(tmp_path):
  """launch/init_from_image_dit.py (subprocess) on the official-layout DiT of tests/fixtures/models/dit_parity.npz:
  the VideoDiT it writes gives, on every frame of a clip of identical frames, the output the official
  facebookresearch/DiT forward gave (recorded in the fixture by tools/parity_dit.py); its report lists only what
  was done (no temporal embedding, the label table copied, nothing dropped)."""
  import subprocess
  from safetensors.numpy import save_file
  from framedit_jax.convert.checkpoint_io import load_params
  from framedit_jax.models import get_model
  import test_image_dit as D
  data = np.load(D.FIXTURE)
  meta = json.loads(bytes(data['__meta__']).decode())
  m = meta['dit_class']  # DiT-S/2, 10 classes, learn_sigma, 8x8x4 latents, depth 2, hidden 32
  save_file(D.dit_state_dict(data, meta, 'dit_class'), str(tmp_path / 'dit.safetensors'))
  frames = 3
  arch = {k: m['overrides'][k] for k in ('depth', 'hidden_size', 'num_heads')}
  env = dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS='cpu')
  r = subprocess.run([sys.executable, os.path.join(REPO, 'launch', 'init_from_image_dit.py'),
                      f'--src={tmp_path / "dit.safetensors"}', '--model=VideoDiT-S/2', f'--out={tmp_path / "v"}',
                      f'--override=num_frames={frames}', '--override=num_classes=10',
                      *[f'--override={k}={v}' for k, v in arch.items()]],
                     env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
  assert r.returncode == 0, r.stderr[-3000:]
  params, saved = load_params(str(tmp_path / 'v'))
  assert saved['model_name'] == 'VideoDiT-S/2' and saved['overrides']['num_classes'] == 10
  video = get_model('VideoDiT-S/2', **saved['overrides'])
  x = data['dit_class|xq'].astype(np.float32) / np.float32(32.0)  # (B, H, W, C) as the official run saw it
  clip = jnp.repeat(jnp.asarray(x)[:, None], frames, axis=1)
  out = np.asarray(video.apply({'params': params}, clip, jnp.asarray(data['dit_class|t']),
                               jnp.asarray(data['dit_class|y'])))
  official = data['dit_class|out']
  assert np.abs(official).max() > 1.0
  for i in range(frames):
    np.testing.assert_allclose(out[:, i], official, rtol=0, atol=2e-5)
  report = json.load(open(tmp_path / 'v' / 'init_report.json'))
  assert report['fresh'] == ['proj_3d', 'x_embedder_3d']  # the 3D-patchify branch only; no temp_embed
  assert not any('temp_embed' in line for key in ('fresh', 'adapted') for line in report[key])
  assert 'y_embedder' in report['copied'] and report['dropped'] == []
  assert not any(line.startswith('y_embedder') for line in report['adapted'])

"""The one weight reader (framedit_jax.convert.weights): formats round-trip, EMA / prefix selection, the one
mismatch report, and bad or unsafe files answered in one line at every loader (the pickle payload never runs)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from framedit_jax.convert import weights

import torch  # pylint: disable=g-import-not-at-top  (test extra: writes the torch files read here)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tensors(seed=0):
  rng = np.random.default_rng(seed)
  return {'blocks.0.attn.qkv.weight': rng.standard_normal((6, 2)).astype(np.float32),
          'blocks.0.attn.qkv.bias': rng.standard_normal(6).astype(np.float32),
          'y_embedder.embedding_table.weight': rng.standard_normal((3, 2)).astype(np.float32),
          'step_index': np.arange(4, dtype=np.int64)}


def _torch(sd):
  return {k: torch.from_numpy(v.copy()) for k, v in sd.items()}


def _assert_same(got, want):
  assert sorted(got) == sorted(want)
  for k, v in want.items():
    assert got[k].dtype == v.dtype, k
    np.testing.assert_array_equal(got[k], v)


# ------------------------------------------------------------------------------------------------ formats
def test_every_format_round_trips_the_same_tensors(tmp_path):
  from safetensors.numpy import save_file
  sd = _tensors()
  save_file(sd, str(tmp_path / 'w.safetensors'))
  np.savez(tmp_path / 'w.npz', **sd)
  for suffix in ('.pt', '.pth', '.bin'):
    torch.save(_torch(sd), tmp_path / f'w{suffix}')
  torch.save({'state_dict': _torch(sd), 'global_step': 3}, tmp_path / 'w.ckpt')  # Lightning / LDM wrapper
  torch.save({'model_state_dict': _torch(sd), 'optimizer_state_dict': {}}, tmp_path / 'pips.pth')  # PIPs++
  for name in ('w.safetensors', 'w.npz', 'w.pt', 'w.pth', 'w.bin', 'w.ckpt', 'pips.pth'):
    got = weights.read_state_dict(str(tmp_path / name))
    _assert_same(got, sd)
    assert got.which == 'state_dict' and got.source == str(tmp_path / name)


def test_sharded_folder_index_and_bf16(tmp_path):
  """A diffusers / transformers folder: `*.safetensors.index.json` + shards; bf16 tensors come back as float32."""
  from safetensors.torch import save_file
  sd = _tensors(1)
  keys = sorted(sd)
  folder = tmp_path / 'transformer'
  folder.mkdir()
  shards = {'model-00001-of-00002.safetensors': keys[:2], 'model-00002-of-00002.safetensors': keys[2:]}
  for shard, names in shards.items():
    save_file({k: torch.from_numpy(sd[k]) for k in names}, str(folder / shard))
  index = {'metadata': {}, 'weight_map': {k: s for s, names in shards.items() for k in names}}
  (folder / 'model.safetensors.index.json').write_text(json.dumps(index))
  (folder / 'stale.safetensors').write_bytes(b'not read: the index names the shards')
  _assert_same(weights.read_state_dict(str(folder)), sd)
  os.remove(folder / 'model-00002-of-00002.safetensors')
  with pytest.raises(FileNotFoundError, match='model-00002-of-00002.safetensors.*re-download'):
    weights.read_state_dict(str(folder))

  bf = {k: torch.from_numpy(v).to(torch.bfloat16) for k, v in sd.items() if v.dtype == np.float32}
  (tmp_path / 'pipe' / 'vae').mkdir(parents=True)
  save_file(bf, str(tmp_path / 'pipe' / 'vae' / 'diffusion_pytorch_model.safetensors'))
  got = weights.read_state_dict(str(tmp_path / 'pipe'), subfolder='vae')  # a pipeline folder: looked up in vae/
  for k, v in bf.items():
    assert got[k].dtype == np.float32
    np.testing.assert_array_equal(got[k], v.float().numpy())
  # torch .bin with bf16 tensors: float32 as well
  torch.save(bf, tmp_path / 'bf.bin')
  np.testing.assert_array_equal(weights.read_state_dict(str(tmp_path / 'bf.bin'))['blocks.0.attn.qkv.bias'],
                                bf['blocks.0.attn.qkv.bias'].float().numpy())


def test_ema_selection_and_prefix_stripping(tmp_path):
  sd = _tensors()
  raw = {k: v + 1 if v.dtype == np.float32 else v for k, v in sd.items()}
  wrapped = lambda d: {f'module._orig_mod.{k}': v for k, v in _torch(d).items()}  # DDP around torch.compile
  ckpt = {'model': wrapped(raw), 'ema': wrapped(sd), 'opt': {'state': {}, 'param_groups': []}, 'train_steps': 7}
  torch.save(ckpt, tmp_path / 'c.pt')
  ema = weights.read_state_dict(str(tmp_path / 'c.pt'))
  assert ema.which == 'ema'
  _assert_same(ema, sd)
  model = weights.read_state_dict(str(tmp_path / 'c.pt'), weights='model')
  assert model.which == 'model'
  _assert_same(model, raw)
  torch.save({'model': wrapped(raw), 'ema': None}, tmp_path / 'no_ema.pt')  # no EMA kept: the raw weights
  assert weights.read_state_dict(str(tmp_path / 'no_ema.pt')).which == 'model'
  torch.save({'ema': wrapped(sd)}, tmp_path / 'ema_only.pt')
  with pytest.raises(ValueError, match=r"ema_only.pt: has no 'model' weights \(keys: \['ema'\]\)"):
    weights.read_state_dict(str(tmp_path / 'ema_only.pt'), weights='model')
  assert weights.strip_prefixes({'_orig_mod.module.a.b': 1, 'c': 2}) == {'a.b': 1, 'c': 2}


def test_the_one_mismatch_report():
  target = {('dense', 'kernel'): (2, 6), ('dense', 'bias'): (6,), ('table',): (3, 2)}
  rename = lambda k: {'dense.weight': (('dense', 'kernel'), 'kernel'), 'dense.bias': (('dense', 'bias'), 'copy'),
                      'table.weight': (('table',), 'copy'), 'buffer': weights.SKIP}.get(k)
  sd = {'dense.weight': np.arange(12.0).reshape(6, 2), 'dense.bias': np.zeros(6), 'table.weight': np.ones((3, 2)),
        'buffer': np.zeros(1)}
  tree = weights.to_flax(sd, target, rename, 'toy')
  np.testing.assert_array_equal(tree['dense']['kernel'], sd['dense.weight'].T)  # torch (out, in) -> (in, out)
  assert tree['table'].dtype == np.float32
  bad = dict(sd, **{'extra.weight': np.zeros(2), 'table.weight': np.ones((2, 2))})
  del bad['dense.bias']
  with pytest.raises(weights.WeightsError) as e:
    weights.to_flax(bad, target, rename, 'toy', hint='pass the toy file', problems=['pos_embed differs'])
  assert str(e.value) == ('toy: 1 missing [dense/bias]; 1 unexpected [extra.weight]; 1 wrong shape '
                          '[table.weight (2, 2) -> table (3, 2)]; pos_embed differs. pass the toy file.')
  # a conv weight OIHW -> HWIO, and its inverse
  w = np.arange(2 * 3 * 4 * 5.0).reshape(2, 3, 4, 5)
  np.testing.assert_array_equal(weights.torch_to_flax_kernel(w), w.transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(weights.flax_to_torch_kernel(weights.torch_to_flax_kernel(w)), w)


# ------------------------------------------------------------------------------------------------ bad files
class _Payload:
  """Unpickling this calls open(marker, 'w'): a file appears iff the pickle's code ran."""

  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return (open, (self.marker, 'w'))


def _malicious(path, marker):
  torch.save({'blocks.0.attn.qkv.weight': torch.zeros(2), 'evil': _Payload(str(marker))}, path)


def _one_line(err, path):
  msg = str(err.value)
  assert '\n' not in msg and os.path.basename(str(path)) in msg, msg
  return msg


def _bad_files(tmp_path):
  """name -> path of: garbage bytes with each suffix, a truncated .pt and .safetensors, a pickled .npz."""
  from safetensors.numpy import save_file
  rng = np.random.default_rng(0)
  out = {}
  for suffix in ('.pt', '.safetensors', '.npz', '.bin'):
    out[f'garbage{suffix}'] = tmp_path / f'garbage{suffix}'
    out[f'garbage{suffix}'].write_bytes(rng.bytes(4096))
  torch.save(_torch(_tensors()), tmp_path / 'full.pt')
  save_file(_tensors(), str(tmp_path / 'full.safetensors'))
  for name in ('full.pt', 'full.safetensors'):
    data = (tmp_path / name).read_bytes()
    out[f'truncated.{name}'] = tmp_path / f'truncated_{name}'
    out[f'truncated.{name}'].write_bytes(data[:len(data) // 2])
  np.save(tmp_path / 'obj.npy', np.array([{'a': 1}], dtype=object), allow_pickle=True)
  np.savez(tmp_path / 'pickled.npz', a=np.array([{'a': 1}], dtype=object))
  out['pickled.npz'] = tmp_path / 'pickled.npz'
  (tmp_path / 'w.h5').write_bytes(b'x')
  out['unknown suffix'] = tmp_path / 'w.h5'
  return out


def test_bad_files_are_one_line_errors(tmp_path):
  for name, path in _bad_files(tmp_path).items():
    with pytest.raises(ValueError) as e:
      weights.read_state_dict(str(path), 'weights')
    msg = _one_line(e, path)
    assert any(w in msg for w in ('damaged', 're-download', 'unknown weight format')), (name, msg)
  with pytest.raises(FileNotFoundError) as e:
    weights.read_state_dict(str(tmp_path / 'nope.pt'), 'DiT checkpoint', hint='get DiT-XL-2-256x256.pt')
  assert _one_line(e, 'nope.pt').endswith('no such file or folder; get DiT-XL-2-256x256.pt')


def _loaders(tmp_path, make):
  """(name, callable, path) for every weight loader, each given a file that `make(path)` writes."""
  from framedit_jax.convert.image_dit import load_dit_checkpoint
  from framedit_jax.convert.t2v import load_latte_t2v, load_official_t2v_checkpoint
  from framedit_jax.eval import c3d, i3d_weights, inception, lpips_convert, pips2_convert
  from framedit_jax.text.convert import load_t5_encoder
  from framedit_jax.vae.loader import load_vae
  import ml_collections
  t5 = tmp_path / 'text_encoder'
  t5.mkdir()
  (t5 / 'config.json').write_text(json.dumps(dict(vocab_size=8, d_model=4, d_kv=2, d_ff=8, num_layers=1,
                                                  num_heads=2, feed_forward_proj='gated-gelu')))
  tr = tmp_path / 'transformer'
  tr.mkdir()
  (tr / 'config.json').write_text('{}')
  paths = {'dit': tmp_path / 'dit.pt', 't2v': tmp_path / 't2v.pt', 'vae': tmp_path / 'vae.ckpt',
           'inception': tmp_path / 'inc.pth', 'c3d': tmp_path / 'c3d.pth', 'lpips': tmp_path / 'vgg.pth',
           'pips2': tmp_path / 'pips2.pth', 't5': t5 / 'pytorch_model.bin', 'latte1': tr / 'diffusion_pytorch_model.bin'}
  for p in paths.values():
    make(p)
  vae_cfg = ml_collections.ConfigDict(dict(name='sd', checkpoint=str(paths['vae']), chunk_size=4, dtype='float32'))
  return [
      ('dit', lambda: load_dit_checkpoint(str(paths['dit'])), paths['dit']),
      ('t2v', lambda: load_official_t2v_checkpoint(str(paths['t2v'])), paths['t2v']),
      ('latte1', lambda: load_latte_t2v(str(tr)), paths['latte1']),
      ('vae', lambda: load_vae(vae_cfg), paths['vae']),
      ('t5', lambda: load_t5_encoder(str(t5)), paths['t5']),
      ('inception', lambda: inception.load_inception_variables(str(paths['inception'])), paths['inception']),
      ('c3d', lambda: c3d.load_c3d(str(paths['c3d']), None), paths['c3d']),
      ('lpips', lambda: lpips_convert.convert_files(str(paths['lpips']), str(tmp_path / 'o.npz'), 'vgg',
                                                    str(paths['lpips'])), paths['lpips']),
      ('pips2', lambda: pips2_convert.load_pips2(str(paths['pips2'])), paths['pips2']),
      ('i3d', lambda: i3d_weights.load_i3d_variables(str(tmp_path / 'i3d.npz')), tmp_path / 'i3d.npz'),
  ]


def test_every_loader_refuses_a_malicious_pickle_in_one_line(tmp_path):
  marker = tmp_path / 'PAYLOAD_RAN'
  loaders = _loaders(tmp_path, lambda p: _malicious(p, marker))
  np.savez(tmp_path / 'i3d.npz', a=np.array([_Payload(str(marker))], dtype=object))  # npz: pickled object array
  for name, load, path in loaders:
    with pytest.raises(ValueError) as e:
      load()
    msg = _one_line(e, path)
    assert ('refused' in msg and 'weights_only' in msg) or 'pickled objects' in msg, (name, msg)
  assert not marker.exists()
  torch.load(loaders[0][2], weights_only=False)  # the same file does run its payload through a plain pickle load
  assert marker.exists()


def test_every_loader_answers_a_garbage_file_in_one_line(tmp_path):
  rng = np.random.default_rng(1)
  loaders = _loaders(tmp_path, lambda p: p.write_bytes(rng.bytes(2048)))
  (tmp_path / 'i3d.npz').write_bytes(rng.bytes(2048))
  for name, load, path in loaders:
    with pytest.raises(ValueError) as e:
      load()
    assert 'damaged' in _one_line(e, path), name


# ------------------------------------------------------------------------------------------------ CLIs
def _run(script, *args):
  env = dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS='cpu')
  return subprocess.run([sys.executable, os.path.join(REPO, 'launch', script), *args], env=env, cwd=REPO,
                        capture_output=True, text=True, timeout=600)


def test_converter_clis_answer_unsafe_and_bad_files_in_one_line(tmp_path):
  marker = tmp_path / 'PAYLOAD_RAN'
  _malicious(tmp_path / 'evil.pt', marker)
  r = _run('convert_checkpoint.py', f'--src={tmp_path / "evil.pt"}', '--model=Latte-S/2', f'--out={tmp_path / "o"}')
  lines = r.stderr.strip().splitlines()
  assert r.returncode == 1 and len(lines) == 1 and lines[0].startswith('error: --src ') and 'refused' in lines[0]
  assert not marker.exists() and not (tmp_path / 'o').exists()
  (tmp_path / 'bad.safetensors').write_bytes(b'\x00' * 64)
  r = _run('init_from_image_dit.py', f'--dit={tmp_path / "bad.safetensors"}', '--model=VideoDiT-S/2',
           f'--out_dir={tmp_path / "o2"}')  # the older flag names still work
  lines = r.stderr.strip().splitlines()
  assert r.returncode == 1 and len(lines) == 1 and 'bad.safetensors' in lines[0] and 'damaged' in lines[0], lines


def test_damaged_converted_checkpoints_answer_in_one_line(tmp_path):
  """Our converted model / VAE dirs with one array file overwritten by garbage of the same size."""
  from framedit_jax.convert import checkpoint_io
  from framedit_jax.vae import checkpoint as vae_checkpoint
  params = {'dense': {'kernel': np.arange(4096, dtype=np.float32).reshape(64, 64), 'bias': np.ones(64, np.float32)}}
  model_dir = checkpoint_io.save_params(params, str(tmp_path / 'model'), 'Latte-S/2')
  vae_dir = str(tmp_path / 'vae')
  vae_checkpoint.save_vae_params(vae_dir, params, {'latent_channels': 4})
  got, _ = checkpoint_io.load_params(model_dir)
  np.testing.assert_array_equal(got['dense']['kernel'], params['dense']['kernel'])
  rng = np.random.default_rng(0)
  for root in (model_dir, vae_dir):  # the largest array file (the kernel), as a disk error would leave it
    data = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if os.path.basename(d) == 'd']
    victim = max(data, key=os.path.getsize)
    size = os.path.getsize(victim)
    with open(victim, 'wb') as f:
      f.write(rng.bytes(size))
  for load, root in ((checkpoint_io.load_params, model_dir), (vae_checkpoint.restore_vae_params, vae_dir)):
    with pytest.raises(ValueError) as e:
      load(root)
    assert 'cannot be restored' in _one_line(e, root) and 'it is damaged' in str(e.value)

"""There is one training loop: every task's step is jitted in one place (`step.jit_train_step`, through
`Experiment.train_step`) and driven by `train/loop.py` alone. Read from the source with ast (nothing imported)."""

import ast
import os

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'framedit_jax')


def _files():
  for d, _, fs in os.walk(ROOT):
    for f in fs:
      if f.endswith('.py'):
        path = os.path.join(d, f)
        yield os.path.relpath(path, ROOT), ast.parse(open(path).read(), path)


def _calls(tree, name):
  """Call nodes whose function is ``name`` or ``<anything>.name``."""
  for node in ast.walk(tree):
    if isinstance(node, ast.Call):
      f = node.func
      if (isinstance(f, ast.Name) and f.id == name) or (isinstance(f, ast.Attribute) and f.attr == name):
        yield node


def test_only_jit_train_step_donates_a_state():
  """A train step is a jit that donates its state; only step.jit_train_step may build one."""
  donating = {}
  for rel, tree in _files():
    for call in _calls(tree, 'jit'):
      if any(k.arg in ('donate_argnums', 'donate_argnames') for k in call.keywords):
        donating.setdefault(rel, []).append(call.lineno)
  assert list(donating) == ['train/step.py'], donating
  tree = dict(_files())['train/step.py']
  fns = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and any(
      c.lineno in donating['train/step.py'] for c in _calls(n, 'jit'))]
  assert [f.name for f in fns] == ['jit_train_step']


def test_only_the_loop_drives_the_step():
  """Experiment.train_step (the jitted step of any task) is called by train/loop.py only, and the old per-task
  loops are gone."""
  callers = sorted({rel for rel, tree in _files() for c in _calls(tree, 'train_step')
                    if isinstance(c.func, ast.Attribute) and rel != 'train/experiment.py'})
  assert callers == ['train/loop.py'], callers
  assert not os.path.exists(os.path.join(ROOT, 'train', 't2v.py'))
  assert not os.path.exists(os.path.join(ROOT, 'train', 'dpvae_loop.py'))
  jit_callers = sorted({rel for rel, tree in _files() for _ in _calls(tree, 'jit_train_step')})
  assert jit_callers == ['train/experiment.py', 'train/step.py'], jit_callers

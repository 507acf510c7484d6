"""The framedit_jax import graph (read with ast, nothing imported): no cycles, no upward imports.

Every `import` counts, including ones inside functions (a lazy import is still a dependency).
"""

import ast
import os

import pytest

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'framedit_jax')

# package -> packages it must not import (layers depend downward only: models <- diffusion <- train;
# data / vae / eval never import train; data never imports vae, which reads the data's clip recipe).
FORBIDDEN = {
    'models': {'diffusion', 'train', 'data', 'vae', 'eval'},
    'diffusion': {'train', 'data', 'vae', 'eval'},
    'data': {'train', 'vae', 'eval', 'models', 'diffusion'},
    'vae': {'train', 'eval', 'models', 'diffusion'},
    'eval': {'train'},
    'parallel': {'train', 'data', 'vae', 'eval'},
    'convert': {'train'},
}


def _modules():
  """{dotted module name: path} of every .py file under framedit_jax."""
  out = {}
  for dirpath, _, files in os.walk(ROOT):
    for f in files:
      if f.endswith('.py'):
        rel = os.path.relpath(os.path.join(dirpath, f), os.path.dirname(ROOT))[:-3].split(os.sep)
        if rel[-1] == '__init__':
          rel = rel[:-1]
        out['.'.join(rel)] = os.path.join(dirpath, f)
  return out


def _resolve(name, modules):
  """The longest prefix of `name` that is a framedit_jax module (None outside the package)."""
  parts = name.split('.')
  while parts:
    cand = '.'.join(parts)
    if cand in modules:
      return cand
    parts.pop()
  return None


def import_graph(modules=None):
  """{module: set of framedit_jax modules it imports}."""
  modules = modules or _modules()
  graph = {}
  for mod, path in modules.items():
    with open(path) as f:
      tree = ast.parse(f.read(), path)
    is_pkg = path.endswith('__init__.py')
    edges = set()
    for node in ast.walk(tree):
      names = []
      if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
      elif isinstance(node, ast.ImportFrom):
        base = node.module or ''
        if node.level:  # relative import
          pkg = mod.split('.') if is_pkg else mod.split('.')[:-1]
          pkg = pkg[:len(pkg) - node.level + 1]
          base = '.'.join(pkg + ([base] if base else []))
        names = [f'{base}.{a.name}' for a in node.names] + [base]
        names = [n for n in names if _resolve(n, modules)]
        names = names[:-1] if len(names) > 1 else names  # `from pkg import mod` -> pkg.mod, not pkg itself
      for n in names:
        target = _resolve(n, modules)
        if target and target != mod:
          edges.add(target)
    graph[mod] = edges
  return graph


def find_cycle(graph):
  """One import cycle as a list of modules, or None (iterative DFS)."""
  color = {m: 0 for m in graph}
  for root in graph:
    if color[root]:
      continue
    stack, path = [(root, iter(sorted(graph[root])))], [root]
    color[root] = 1
    while stack:
      node, it = stack[-1]
      nxt = next(it, None)
      if nxt is None:
        color[node] = 2
        stack.pop()
        path.pop()
      elif color.get(nxt, 2) == 1:
        return path[path.index(nxt):] + [nxt]
      elif color.get(nxt) == 0:
        color[nxt] = 1
        stack.append((nxt, iter(sorted(graph[nxt]))))
        path.append(nxt)
  return None


def upward_imports(graph):
  out = []
  for mod, edges in graph.items():
    parts = mod.split('.')
    if len(parts) < 2 or parts[1] not in FORBIDDEN:
      continue
    for e in edges:
      eparts = e.split('.')
      if len(eparts) > 1 and eparts[1] in FORBIDDEN[parts[1]]:
        out.append(f'{mod} -> {e}')
  return sorted(out)


def test_no_import_cycles():
  cycle = find_cycle(import_graph())
  assert cycle is None, 'import cycle: ' + ' -> '.join(cycle)


def test_no_upward_imports():
  assert upward_imports(import_graph()) == []


def test_checker_finds_planted_cycle_and_upward_import():
  graph = import_graph()
  assert 'framedit_jax.data.clip_recipe' in graph['framedit_jax.data.pipeline']  # edges are really read
  planted = {k: set(v) for k, v in graph.items()}
  planted['framedit_jax.data.clip_recipe'].add('framedit_jax.data.pipeline')
  assert find_cycle(planted) is not None
  planted = {k: set(v) for k, v in graph.items()}
  planted['framedit_jax.models.blocks'].add('framedit_jax.diffusion.gaussian_diffusion')
  assert upward_imports(planted) == ['framedit_jax.models.blocks -> framedit_jax.diffusion.gaussian_diffusion']


@pytest.mark.parametrize('old', ['framedit_jax/data/sampling.py', 'framedit_jax/train/sampling.py'])
def test_sampling_modules_renamed(old):
  assert not os.path.exists(os.path.join(os.path.dirname(ROOT), old))

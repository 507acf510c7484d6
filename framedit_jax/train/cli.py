"""Command-line plumbing of the launch scripts: one-line `error: ...` messages instead of tracebacks.

`run(main)` replaces `absl.app.run(main)`: a bad `--config.a.b=v` override (unknown field, wrong type) or any
`ValueError` / `FileNotFoundError` / `KeyError` / `TypeError` raised by `main` prints one `error:` line to
stderr and exits with status 1. Unknown fields get the closest existing name (difflib).
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import sys

from absl import app
from absl import flags

USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, KeyError, TypeError, FloatingPointError)


def _one_line(err: BaseException) -> str:
  text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
  return ' '.join(text.replace('\\n', ' ').split()).strip('\'"')


def _config_file(argv: list[str], name: str = 'config') -> str | None:
  for i, arg in enumerate(argv):
    if arg.startswith(f'--{name}='):
      return arg.split('=', 1)[1]
    if arg == f'--{name}' and i + 1 < len(argv):
      return argv[i + 1]
  return None


def _load_config(path: str):
  """``(config, error)`` for a config file (``file.py`` or ``file.py:arg``): ``get_config(arg)``'s result, or
  None and the one-line text of the user error it raised (a bad config argument, see configs/common.py)."""
  path, _, arg = path.partition(':')
  if not os.path.isfile(path):
    return None, None
  spec = importlib.util.spec_from_file_location('_framedit_cli_config', path)
  module = importlib.util.module_from_spec(spec)
  try:
    spec.loader.exec_module(module)
    return (module.get_config(arg) if arg else module.get_config()), None
  except USER_ERRORS as err:
    return None, _one_line(err)
  except Exception:  # pylint: disable=broad-except
    return None, None


def unknown_override(config, argv: list[str], name: str = 'config') -> str | None:
  """The first ``--config.a.b=v`` in ``argv`` naming a field ``config`` does not have, explained in one line
  with the closest existing names; None when every override names an existing field."""
  prefix = f'--{name}.'
  for arg in argv:
    if not arg.startswith(prefix):
      continue
    path = arg[len(prefix):].split('=', 1)[0]
    node, seen = config, name
    for part in path.split('.'):
      keys = list(node.keys()) if hasattr(node, 'keys') else []
      if part not in keys:
        close = difflib.get_close_matches(part, keys, n=3, cutoff=0.5)
        hint = (f'did you mean {", ".join(f"{seen}.{c}" for c in close)}?' if close else
                f'{seen} has: {", ".join(sorted(keys))}.' if keys else f'{seen} is not a group of fields.')
        return f'{prefix}{path}: {seen} has no field {part!r}; {hint}'
      node, seen = node[part], f'{seen}.{part}'
  return None


def parse_flags(argv: list[str]) -> list[str]:
  """absl flag parsing that turns every error into one ``error:`` line and exit status 1."""
  try:
    return flags.FLAGS(argv)
  except Exception as err:  # pylint: disable=broad-except
    msg = None
    path = _config_file(argv)
    if path and (path.partition(':')[0].endswith('.py') or any(a.startswith('--config.') for a in argv)):
      if not os.path.isfile(path.partition(':')[0]):
        msg = f'--config={path}: no such file; pass a config file such as configs/demo.py.'
      else:
        config, msg = _load_config(path)
        msg = msg or (unknown_override(config, argv) if config is not None else None)
    print(f'error: {msg or _one_line(err)}', file=sys.stderr)
    sys.exit(1)


def run(main) -> None:
  """``app.run(main)`` with one-line user errors (see the module docstring)."""

  def guarded(argv):
    try:
      return main(argv)
    except USER_ERRORS as err:
      print(f'error: {_one_line(err)}', file=sys.stderr)
      sys.exit(1)

  app.run(guarded, flags_parser=parse_flags)

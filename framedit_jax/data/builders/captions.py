"""Caption lookup for text-video folders: same-name `.txt`, a JSON/CSV manifest, or prompts.txt + videos.txt.

Sources, first match wins per video (paths are relative to manual_dir, '/'-separated):
  1. `<video stem>.txt` next to the video (e.g. clips/a.mp4 -> clips/a.txt);
  2. `captions.json`: `{"<rel path or file name>": "caption", ...}` or `[{"path"|"video"|"videoid": ...,
     "caption"|"text"|"cap"|"name": ...}, ...]` (WebVid/Pexels-style lists);
  3. `captions.csv` with a header holding one path column (path/video/videoid/file) and one caption column
     (caption/text/cap/name) -- WebVid's `videoid,name,...` works;
  4. `videos.txt` + `prompts.txt` (one per line, same order; the official `t2v_dataset.py` layout).
A manifest key may omit the extension (WebVid `videoid`). A caption is bad when it is empty after stripping or
not a string; such videos, and videos with no caption, are skipped and counted.
"""

from __future__ import annotations

import csv
import json
import os

SKIP_REASONS = ('no_caption', 'bad_caption')
_PATH_KEYS = ('path', 'video', 'videoid', 'video_id', 'file', 'filename')
_TEXT_KEYS = ('caption', 'text', 'cap', 'name', 'prompt')


def _pick(row: dict, keys: tuple[str, ...]):
  lower = {str(k).strip().lower(): v for k, v in row.items()}
  for k in keys:
    if k in lower:
      return lower[k]
  return None


def load_manifest(manual_dir: str) -> dict[str, object]:
  """`{key: raw caption}` from captions.json / captions.csv / videos.txt + prompts.txt in manual_dir (may be empty).

  Raises:
    ValueError: a manifest that cannot be read (one line naming the file and what is expected).
  """
  table: dict[str, object] = {}
  path = os.path.join(manual_dir, 'captions.json')
  if os.path.isfile(path):
    with open(path, encoding='utf-8') as f:
      data = json.load(f)
    if isinstance(data, dict):
      table.update({str(k): v for k, v in data.items()})
    elif isinstance(data, list):
      for row in data:
        if isinstance(row, dict) and _pick(row, _PATH_KEYS) is not None:
          table[str(_pick(row, _PATH_KEYS))] = _pick(row, _TEXT_KEYS)
    else:
      raise ValueError(f'{path}: expected a JSON object {{path: caption}} or a list of {{path, caption}} rows.')
  path = os.path.join(manual_dir, 'captions.csv')
  if os.path.isfile(path):
    with open(path, encoding='utf-8', newline='') as f:
      reader = csv.DictReader(f)
      header = [h.strip().lower() for h in (reader.fieldnames or [])]
      if not any(k in header for k in _PATH_KEYS) or not any(k in header for k in _TEXT_KEYS):
        raise ValueError(f'{path}: header needs a path column ({"/".join(_PATH_KEYS)}) and a caption column '
                         f'({"/".join(_TEXT_KEYS)}); got {header}.')
      for row in reader:
        table.setdefault(str(_pick(row, _PATH_KEYS)), _pick(row, _TEXT_KEYS))
  videos, prompts = os.path.join(manual_dir, 'videos.txt'), os.path.join(manual_dir, 'prompts.txt')
  if os.path.isfile(videos) and os.path.isfile(prompts):
    read = lambda p: [ln.strip() for ln in open(p, encoding='utf-8') if ln.strip()]
    v, p = read(videos), read(prompts)
    if len(v) != len(p):
      raise ValueError(f'{videos} has {len(v)} lines but {prompts} has {len(p)}; they must pair up line by line.')
    for a, b in zip(v, p):
      table.setdefault(a, b)
  return table


def find_caption(manual_dir: str, rel_path: str, manifest: dict[str, object]) -> tuple[str | None, str]:
  """`(caption, '')` or `(None, reason)` with reason in SKIP_REASONS, for the video at `rel_path`."""
  stem = os.path.splitext(rel_path)[0]
  txt = os.path.join(manual_dir, stem + '.txt')
  raw: object = None
  found = False
  if os.path.isfile(txt):
    with open(txt, encoding='utf-8', errors='replace') as f:
      raw, found = f.read(), True
  else:
    base = os.path.basename(rel_path)
    for key in (rel_path, base, stem, os.path.splitext(base)[0]):
      if key in manifest:
        raw, found = manifest[key], True
        break
  if not found:
    return None, 'no_caption'
  if not isinstance(raw, str) or not raw.strip():
    return None, 'bad_caption'
  return ' '.join(raw.split()), ''

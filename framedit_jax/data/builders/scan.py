"""Finding raw videos in `manual_dir`: video files and per-video frame folders, in sorted order."""

import os

from framedit_jax.data import decode
from framedit_jax.data.builders import base


def _has_images(folder):
  try:
    return any(n.lower().endswith(decode.IMAGE_EXTENSIONS) for n in os.listdir(folder))
  except OSError:
    return False


def find_sources(root, class_names=None):
  """All videos under `root`, sorted by relative path.

  A video is a file with a video extension, or a directory that directly holds image files (its frames).
  Args:
    root: directory to walk.
    class_names: sorted class names; a video's label is the index of its top-level folder under `root`
      (0 when the folder is not a class or class_names is empty/None).
  Returns:
    list of base.VideoSource.
  """
  index = {n: i for i, n in enumerate(class_names or [])}
  sources = []
  for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
    dirnames.sort()
    rel_dir = os.path.relpath(dirpath, root)
    top = rel_dir.split(os.sep)[0] if rel_dir != '.' else ''
    label = index.get(top, 0)
    if rel_dir != '.' and any(n.lower().endswith(decode.IMAGE_EXTENSIONS) for n in filenames):
      sources.append(base.VideoSource(dirpath, rel_dir, label))
    for name in sorted(filenames):
      if name.lower().endswith(decode.VIDEO_EXTENSIONS):
        rel = os.path.normpath(os.path.join(rel_dir, name))
        top_f = rel.split(os.sep)[0] if os.sep in rel else ''
        sources.append(base.VideoSource(os.path.join(dirpath, name), rel, index.get(top_f, 0)))
  return sorted(sources, key=lambda s: s.rel_path)


def split_roots(manual_dir):
  """{'train': manual_dir/train, 'test': manual_dir/test} when train/ exists, else {'train': manual_dir}."""
  train = os.path.join(manual_dir, 'train')
  if os.path.isdir(train) and not _has_images(train):
    roots = {'train': train}
    test = os.path.join(manual_dir, 'test')
    if os.path.isdir(test):
      roots['test'] = test
    return roots
  return {'train': manual_dir}


def class_names(roots):
  """Sorted top-level folders of the train root that are classes (do not directly hold frames)."""
  root = roots['train']
  names = [n for n in os.listdir(root) if os.path.isdir(os.path.join(root, n))
           and not _has_images(os.path.join(root, n))]
  return sorted(names)


def find_train_test_or_all(manual_dir):
  return {split: find_sources(root) for split, root in split_roots(manual_dir).items()}


def find_split_dirs(manual_dir, aliases):
  """{split: find_sources(first existing alias folder)}; raises if no split folder exists.

  Args:
    manual_dir: the raw data root.
    aliases: {split: (folder name, ...)}, e.g. {'train': ('sky_train', 'train')}.
  Raises:
    FileNotFoundError: none of the split folders is in manual_dir.
  """
  out = {}
  for split, names in aliases.items():
    for name in names:
      path = os.path.join(manual_dir, name)
      if os.path.isdir(path):
        out[split] = find_sources(path)
        break
  if not out:
    wanted = ', '.join('/'.join(v) for v in aliases.values())
    raise FileNotFoundError(f'manual_dir {manual_dir} has none of the split folders {wanted}.')
  return out


def chunk_frame_folders(sources, chunk):
  """Cuts frame folders of >= `chunk` frames into consecutive chunks of `chunk` frames (official Sky rule)."""
  out = []
  for src in sources:
    if os.path.isdir(src.path):
      n = len(decode.list_frame_files(src.path))
      if n >= chunk:
        for i, start in enumerate(range(0, n, chunk)):
          out.append(base.VideoSource(src.path, f'{src.rel_path}_chunk_{i}', src.label, (start, start + chunk)))
        continue
    out.append(src)
  return out

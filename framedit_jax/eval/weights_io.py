"""Reading a network's weights from a file into NumPy, shared by the LPIPS and PIPs++ converters."""

import numpy as np


def read_state_dict(path: str, wrapper_key: str) -> dict[str, np.ndarray]:
  """`{name: float array}` from a `.safetensors` (no torch), `.npz`, or torch `.pth/.pt` file.

  Torch files are read with `torch.load(weights_only=True)` (torch imported only then); a checkpoint dict that
  nests the weights under `wrapper_key` (e.g. 'state_dict', 'model_state_dict') is unwrapped. The caller checks
  that `path` exists (its error names where the weights come from).
  """
  if path.endswith('.safetensors'):
    from safetensors.numpy import load_file  # pylint: disable=g-import-not-at-top
    return dict(load_file(path))
  if path.endswith('.npz'):
    with np.load(path) as d:
      return {k: d[k] for k in d.files}
  import torch  # pylint: disable=g-import-not-at-top
  sd = torch.load(path, map_location='cpu', weights_only=True)
  if isinstance(sd, dict) and wrapper_key in sd:
    sd = sd[wrapper_key]
  return {k: v.detach().float().numpy() for k, v in sd.items()}

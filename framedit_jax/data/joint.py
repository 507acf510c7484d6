"""Joint image-video training with probability p (VideoDiT §3.2 "Joint Image-Video Training").

Each training step is a video step with probability `config.data.video_prob` = p, else an image step. The
decision depends only on (seed, step), so every process takes the same branch and a resumed run repeats it; the
image batch is a pure function of the video batch (itself a pure function of (seed, step, process)).
An image step turns the clips `(B, T, H, W, C)` into `B*T` one-frame clips `(B*T, 1, H, W, C)` (same tokens per
step; labels repeated per frame), which the model sees as images (T = 1). Only VideoDiT 2D->3D models
(`VideoDiT-*`) accept T = 1; Latte / FrameDiT use the appended-images form (`config.data.use_image_num`).
"""

from __future__ import annotations

import numpy as np

_TAG = 0x1A6E  # separates this stream from the data pipeline's example rngs


def is_video_step(seed: int, step: int, video_prob: float) -> bool:
  """True with probability `video_prob` for each step; a pure function of (seed, step)."""
  if video_prob >= 1.0:
    return True
  u = np.random.default_rng(np.random.SeedSequence([int(seed), int(step), _TAG])).random()
  return bool(u < video_prob)


def check_joint_config(config) -> None:
  """Raises a one-line ValueError for an unusable `config.data.video_prob`."""
  p = float(config.data.get('video_prob', 1.0))
  if not 0.0 <= p <= 1.0:
    raise ValueError(f'config.data.video_prob must be in [0, 1], got {p}.')
  if p < 1.0 and not config.model.name.startswith('VideoDiT-'):
    raise ValueError(f'config.data.video_prob={p} (image steps with T=1) needs a VideoDiT-* model; for '
                     f'{config.model.name} use config.data.use_image_num (appended images) instead.')
  if p < 1.0 and config.data.get('use_image_num', 0):
    raise ValueError('config.data.video_prob < 1 and use_image_num > 0 are two joint-training forms; pick one.')


def joint_batch(batch: dict, config, step: int) -> dict:
  """The batch of step `step`: unchanged on a video step; `(B*T, 1, H, W, C)` frames on an image step.

  Args:
    batch: host batch `{'video': (B, T, H, W, C), 'label': (B,)}` (pixels or cached latents).
    config: uses seed and data.video_prob.
    step: the global step index (0-based).
  """
  p = float(config.data.get('video_prob', 1.0))
  if is_video_step(config.seed, step, p):
    return batch
  video = np.asarray(batch['video'])
  b, t = video.shape[:2]
  out = dict(batch)
  out['video'] = video.reshape((b * t, 1) + video.shape[2:])
  out['label'] = np.repeat(np.asarray(batch['label']), t)
  return out

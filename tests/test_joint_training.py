"""Joint image-video training with probability p (VideoDiT): step choice and image batches (train steps:
tests/test_imgdit_training.py)."""

import os
import sys

import numpy as np
import pytest

from framedit_jax.data.joint import check_joint_config, is_video_step, joint_batch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _config(p, name='VideoDiT-S/2'):
  from configs import demo
  config = demo.get_config()
  config.model.name = name
  config.model.overrides = dict(hidden_size=16, depth=1, num_heads=2)
  config.data.image_size, config.data.num_frames, config.data.global_batch_size = 8, 2, 2
  config.data.video_prob = p
  return config


def test_video_steps_have_probability_p_and_depend_only_on_seed_and_step():
  steps = [is_video_step(3, s, 0.8) for s in range(4000)]
  assert abs(np.mean(steps) - 0.8) < 4 * np.sqrt(0.8 * 0.2 / 4000)
  assert steps == [is_video_step(3, s, 0.8) for s in range(4000)]  # pure: a resumed run repeats the choices
  assert steps != [is_video_step(4, s, 0.8) for s in range(4000)]
  assert all(is_video_step(0, s, 1.0) for s in range(50)) and not any(is_video_step(0, s, 0.0) for s in range(50))


def test_image_step_batch_and_config_errors():
  config = _config(0.0)
  video = np.arange(2 * 2 * 8 * 8 * 3, dtype=np.float32).reshape(2, 2, 8, 8, 3)
  out = joint_batch({'video': video, 'label': np.array([4, 7], np.int32)}, config, step=5)
  assert out['video'].shape == (4, 1, 8, 8, 3)
  np.testing.assert_array_equal(out['video'][3, 0], video[1, 1])
  np.testing.assert_array_equal(out['label'], [4, 4, 7, 7])
  assert joint_batch({'video': video, 'label': np.zeros(2)}, _config(1.0), 5)['video'] is video
  with pytest.raises(ValueError, match='needs a VideoDiT'):
    check_joint_config(_config(0.8, 'Latte-S/2'))
  with pytest.raises(ValueError, match=r'in \[0, 1\]'):
    check_joint_config(_config(1.5))

"""Test-only PyTorch C3D (Tran et al. 2015, UCF-101 head) and its TGANv2 input path, from the public definition.

NCTHW layout; pool5 uses ``ceil_mode=True`` (an independent route to Caffe/Chainer's 7 -> 4 pooling);
fc6 flattens (C, T, H, W) as ``view(B, -1)`` does. Tensor names follow the Caffe/Chainer layer names.
"""
import torch
from torch import nn
import torch.nn.functional as F

CONVS = (('conv1a', 3, 64), ('conv2a', 64, 128), ('conv3a', 128, 256), ('conv3b', 256, 256),
         ('conv4a', 256, 512), ('conv4b', 512, 512), ('conv5a', 512, 512), ('conv5b', 512, 512))
POOL_AFTER = {'conv1a': (1, 2, 2), 'conv2a': (2, 2, 2), 'conv3b': (2, 2, 2), 'conv4b': (2, 2, 2)}


class C3D(nn.Module):

  def __init__(self, num_classes=101):
    super().__init__()
    for name, cin, cout in CONVS:
      setattr(self, name, nn.Conv3d(cin, cout, 3, padding=1))
    self.fc6 = nn.Linear(8192, 4096)
    self.fc7 = nn.Linear(4096, 4096)
    self.fc8 = nn.Linear(4096, num_classes)

  def forward(self, x):
    """x: (B, 3, 16, 112, 112) preprocessed -> (B, 101) logits."""
    for name, _, _ in CONVS:
      x = F.relu(getattr(self, name)(x))
      if name in POOL_AFTER:
        x = F.max_pool3d(x, POOL_AFTER[name], POOL_AFTER[name])
    x = F.max_pool3d(x, 2, 2, ceil_mode=True)
    x = x.reshape(x.shape[0], -1)
    return self.fc8(F.relu(self.fc7(F.relu(self.fc6(x)))))


def tgan2_input(video_uint8, mean_bgr_cthw):
  """(B, 16, 128, 128, 3) uint8 RGB, (3, 16, 128, 128) BGR mean -> (B, 3, 16, 112, 112): BGR, minus mean, crop."""
  x = torch.as_tensor(video_uint8).float().permute(0, 4, 1, 2, 3)  # (B, 3, T, H, W) RGB
  x = x.flip(1) - mean_bgr_cthw[None]
  return x[:, :, :, 8:120, 8:120].contiguous()


def randomize_(model, seed=0):
  """He-normal weights and small random biases; conv1a is scaled by 1/128 for [0, 255]-scale inputs."""
  g = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for name, m in model.named_children():
      fan_in = m.weight[0].numel()
      scale = (2.0 / fan_in)**0.5 / (128.0 if name == 'conv1a' else 1.0)
      m.weight.copy_(torch.randn(m.weight.shape, generator=g) * scale)
      m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
  return model.eval()

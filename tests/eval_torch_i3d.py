"""Test-only PyTorch Inception-I3D (Carreira & Zisserman 2017), written from the public definition.

Independent second implementation for parity: NCTHW layout, TF 'SAME' padding done explicitly with F.pad
(zeros for convs, -inf for max pools), BatchNorm through F.batch_norm (no scale, eps 1e-3).
"""
import math

import torch
import torch.nn.functional as F

BLOCKS = (('Mixed_3b', 'Mixed_3c'), ('Mixed_4b', 'Mixed_4c', 'Mixed_4d', 'Mixed_4e', 'Mixed_4f'),
          ('Mixed_5b', 'Mixed_5c'))


def _same_pad(x, kernel, stride, value):
  pads = []
  for size, k, s in reversed(list(zip(x.shape[2:], kernel, stride))):  # F.pad wants last dim first
    total = max((math.ceil(size / s) - 1) * s + k - size, 0)
    pads += [total // 2, total - total // 2]
  return F.pad(x, pads, value=value)


class TorchI3D:
  """Forward pass only; ``variables`` is our nested Flax dict of numpy arrays."""

  def __init__(self, variables):
    self.p, self.s = variables['params'], variables['batch_stats']

  def unit(self, x, p, s, kernel, stride=(1, 1, 1)):
    w = torch.from_numpy(p['conv']['kernel']).permute(4, 3, 0, 1, 2).contiguous()
    x = F.conv3d(_same_pad(x, kernel, stride, 0.0), w, stride=stride)
    x = F.batch_norm(x, torch.from_numpy(s['bn']['mean']), torch.from_numpy(s['bn']['var']),
                     None, torch.from_numpy(p['bn']['bias']), False, 0.0, 1e-3)
    return F.relu(x)

  def pool(self, x, kernel, stride):
    return F.max_pool3d(_same_pad(x, kernel, stride, float('-inf')), kernel, stride)

  def block(self, x, name):
    p, s = self.p[name], self.s[name]
    u = lambda y, b, k=(1, 1, 1): self.unit(y, p[b], s[b], k)
    b0 = u(x, 'Branch_0_Conv3d_0a_1x1')
    b1 = u(u(x, 'Branch_1_Conv3d_0a_1x1'), 'Branch_1_Conv3d_0b_3x3', (3, 3, 3))
    b2 = u(u(x, 'Branch_2_Conv3d_0a_1x1'), 'Branch_2_Conv3d_0b_3x3', (3, 3, 3))
    b3 = u(self.pool(x, (3, 3, 3), (1, 1, 1)), 'Branch_3_Conv3d_0b_1x1')
    return torch.cat([b0, b1, b2, b3], dim=1)

  @torch.no_grad()
  def __call__(self, x):
    """x: (B, 3, T, 224, 224) in [-1, 1] -> (B, 400) time-averaged logits."""
    x = self.unit(x, self.p['Conv3d_1a_7x7'], self.s['Conv3d_1a_7x7'], (7, 7, 7), (2, 2, 2))
    x = self.pool(x, (1, 3, 3), (1, 2, 2))
    x = self.unit(x, self.p['Conv3d_2b_1x1'], self.s['Conv3d_2b_1x1'], (1, 1, 1))
    x = self.unit(x, self.p['Conv3d_2c_3x3'], self.s['Conv3d_2c_3x3'], (3, 3, 3))
    x = self.pool(x, (1, 3, 3), (1, 2, 2))
    for group, pool in zip(BLOCKS, (((3, 3, 3), (2, 2, 2)), ((2, 2, 2), (2, 2, 2)), None)):
      for name in group:
        x = self.block(x, name)
      if pool:
        x = self.pool(x, *pool)
    x = F.avg_pool3d(x, (2, 7, 7), stride=1)
    lp = self.p['Logits_Conv3d_0c_1x1']
    w = torch.from_numpy(lp['kernel']).permute(4, 3, 0, 1, 2).contiguous()
    x = F.conv3d(x, w, torch.from_numpy(lp['bias']))
    return x.mean(dim=(2, 3, 4))

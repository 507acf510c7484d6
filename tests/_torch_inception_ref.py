"""Test-only PyTorch FID InceptionV3 (pytorch-fid layout), written from the public definition.

Same module/tensor names as pytorch-fid's ``fid_inception_v3()`` (torchvision ``Inception3`` with the
``FIDInceptionA/C/E_1/E_2`` blocks), NCHW, eval mode. Used only to check ``framedit_jax.eval.inception``.
"""
import torch
from torch import nn
import torch.nn.functional as F


class Unit(nn.Module):

  def __init__(self, cin, cout, k=1, s=1, p=0):
    super().__init__()
    self.conv = nn.Conv2d(cin, cout, k, stride=s, padding=p, bias=False)
    self.bn = nn.BatchNorm2d(cout, eps=0.001)

  def forward(self, x):
    return F.relu(self.bn(self.conv(x)))


def _avg(x):
  return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class BlockA(nn.Module):

  def __init__(self, cin, pool_features):
    super().__init__()
    self.branch1x1 = Unit(cin, 64)
    self.branch5x5_1 = Unit(cin, 48)
    self.branch5x5_2 = Unit(48, 64, 5, p=2)
    self.branch3x3dbl_1 = Unit(cin, 64)
    self.branch3x3dbl_2 = Unit(64, 96, 3, p=1)
    self.branch3x3dbl_3 = Unit(96, 96, 3, p=1)
    self.branch_pool = Unit(cin, pool_features)

  def forward(self, x):
    return torch.cat([self.branch1x1(x), self.branch5x5_2(self.branch5x5_1(x)),
                      self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                      self.branch_pool(_avg(x))], 1)


class BlockB(nn.Module):

  def __init__(self, cin):
    super().__init__()
    self.branch3x3 = Unit(cin, 384, 3, s=2)
    self.branch3x3dbl_1 = Unit(cin, 64)
    self.branch3x3dbl_2 = Unit(64, 96, 3, p=1)
    self.branch3x3dbl_3 = Unit(96, 96, 3, s=2)

  def forward(self, x):
    return torch.cat([self.branch3x3(x), self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                      F.max_pool2d(x, 3, stride=2)], 1)


class BlockC(nn.Module):

  def __init__(self, cin, c7):
    super().__init__()
    self.branch1x1 = Unit(cin, 192)
    self.branch7x7_1 = Unit(cin, c7)
    self.branch7x7_2 = Unit(c7, c7, (1, 7), p=(0, 3))
    self.branch7x7_3 = Unit(c7, 192, (7, 1), p=(3, 0))
    self.branch7x7dbl_1 = Unit(cin, c7)
    self.branch7x7dbl_2 = Unit(c7, c7, (7, 1), p=(3, 0))
    self.branch7x7dbl_3 = Unit(c7, c7, (1, 7), p=(0, 3))
    self.branch7x7dbl_4 = Unit(c7, c7, (7, 1), p=(3, 0))
    self.branch7x7dbl_5 = Unit(c7, 192, (1, 7), p=(0, 3))
    self.branch_pool = Unit(cin, 192)

  def forward(self, x):
    b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
    bd = x
    for i in range(1, 6):
      bd = getattr(self, f'branch7x7dbl_{i}')(bd)
    return torch.cat([self.branch1x1(x), b7, bd, self.branch_pool(_avg(x))], 1)


class BlockD(nn.Module):

  def __init__(self, cin):
    super().__init__()
    self.branch3x3_1 = Unit(cin, 192)
    self.branch3x3_2 = Unit(192, 320, 3, s=2)
    self.branch7x7x3_1 = Unit(cin, 192)
    self.branch7x7x3_2 = Unit(192, 192, (1, 7), p=(0, 3))
    self.branch7x7x3_3 = Unit(192, 192, (7, 1), p=(3, 0))
    self.branch7x7x3_4 = Unit(192, 192, 3, s=2)

  def forward(self, x):
    b7 = x
    for i in range(1, 5):
      b7 = getattr(self, f'branch7x7x3_{i}')(b7)
    return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b7, F.max_pool2d(x, 3, stride=2)], 1)


class BlockE(nn.Module):

  def __init__(self, cin, use_max):
    super().__init__()
    self.use_max = use_max
    self.branch1x1 = Unit(cin, 320)
    self.branch3x3_1 = Unit(cin, 384)
    self.branch3x3_2a = Unit(384, 384, (1, 3), p=(0, 1))
    self.branch3x3_2b = Unit(384, 384, (3, 1), p=(1, 0))
    self.branch3x3dbl_1 = Unit(cin, 448)
    self.branch3x3dbl_2 = Unit(448, 384, 3, p=1)
    self.branch3x3dbl_3a = Unit(384, 384, (1, 3), p=(0, 1))
    self.branch3x3dbl_3b = Unit(384, 384, (3, 1), p=(1, 0))
    self.branch_pool = Unit(cin, 192)

  def forward(self, x):
    b3 = self.branch3x3_1(x)
    b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
    bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
    bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
    bp = F.max_pool2d(x, 3, stride=1, padding=1) if self.use_max else _avg(x)
    return torch.cat([self.branch1x1(x), b3, bd, self.branch_pool(bp)], 1)


class FIDInception(nn.Module):
  """forward((N, 3, 299, 299) in [-1, 1]) -> (pool (N, 2048), logits (N, 1008))."""

  def __init__(self):
    super().__init__()
    self.Conv2d_1a_3x3 = Unit(3, 32, 3, s=2)
    self.Conv2d_2a_3x3 = Unit(32, 32, 3)
    self.Conv2d_2b_3x3 = Unit(32, 64, 3, p=1)
    self.Conv2d_3b_1x1 = Unit(64, 80)
    self.Conv2d_4a_3x3 = Unit(80, 192, 3)
    self.Mixed_5b = BlockA(192, 32)
    self.Mixed_5c = BlockA(256, 64)
    self.Mixed_5d = BlockA(288, 64)
    self.Mixed_6a = BlockB(288)
    self.Mixed_6b = BlockC(768, 128)
    self.Mixed_6c = BlockC(768, 160)
    self.Mixed_6d = BlockC(768, 160)
    self.Mixed_6e = BlockC(768, 192)
    self.Mixed_7a = BlockD(768)
    self.Mixed_7b = BlockE(1280, False)
    self.Mixed_7c = BlockE(2048, True)
    self.fc = nn.Linear(2048, 1008)

  def forward(self, x):
    x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
    x = F.max_pool2d(x, 3, stride=2)
    x = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), 3, stride=2)
    for name in ('5b', '5c', '5d', '6a', '6b', '6c', '6d', '6e', '7a', '7b', '7c'):
      x = getattr(self, 'Mixed_' + name)(x)
    pool = F.adaptive_avg_pool2d(x, 1).flatten(1)
    return pool, self.fc(pool)


def randomize_(model, seed=0):
  """Random weights with non-trivial BatchNorm statistics, scaled so activations stay O(1)."""
  g = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for m in model.modules():
      if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.Linear)):
        fan_in = m.weight[0].numel()
        m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in)**0.5)
        if m.bias is not None:
          m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
      elif isinstance(m, nn.BatchNorm2d):
        n = m.num_features
        m.weight.copy_(1 + 0.1 * torch.randn(n, generator=g))
        m.bias.copy_(0.1 * torch.randn(n, generator=g))
        m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
        m.running_var.copy_(1 + 0.2 * torch.rand(n, generator=g))
  return model.eval()

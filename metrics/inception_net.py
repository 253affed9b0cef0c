"""The FID Inception-v3 network: torchvision's ``Inception3`` with the TensorFlow graph's pooling.

The reference FID network is the 2015-12-05 TensorFlow Inception graph. Its weights
(``pt_inception-2015-12-05``) fit torchvision's ``Inception3`` with 1,008 classes and no
auxiliary head, but three of its block types pool differently from torchvision's:

* InceptionA, InceptionC and the first InceptionE average-pool their pool branch without counting
  the zero padding (TF's ``AVG`` pooling; torchvision counts it, which darkens the borders);
* the last InceptionE (``Mixed_7c``, 2,048 input channels) max-pools its pool branch.

Features computed with torchvision's blocks would differ from every published FID. This module
is imported only when ``inception-v3`` is built: torchvision takes ~1 s to import.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.models.inception import (
    BasicConv2d,
    Inception3,
    InceptionA,
    InceptionAux,
    InceptionB,
    InceptionC,
    InceptionD,
    InceptionE,
)

# Input channels of Mixed_7c, the only block that the TF graph max-pools.
_MAX_POOLED_E_CHANNELS = 2048


def _tf_avg_pool(x: Tensor) -> Tensor:
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


def _tf_max_pool(x: Tensor) -> Tensor:
    return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)


class TFInceptionA(InceptionA):
    """InceptionA whose pool branch averages over the unpadded pixels only."""

    def _forward(self, x: Tensor) -> list[Tensor]:
        return [
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_tf_avg_pool(x)),
        ]


class TFInceptionC(InceptionC):
    """InceptionC whose pool branch averages over the unpadded pixels only."""

    def _forward(self, x: Tensor) -> list[Tensor]:
        branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        branch7x7dbl = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3,
                      self.branch7x7dbl_4, self.branch7x7dbl_5):
            branch7x7dbl = layer(branch7x7dbl)
        return [self.branch1x1(x), branch7x7, branch7x7dbl, self.branch_pool(_tf_avg_pool(x))]


class TFInceptionE(InceptionE):
    """InceptionE with the TF graph's pool branch: unpadded average, or max in ``Mixed_7c``."""

    def __init__(self, in_channels: int, **kwargs) -> None:
        super().__init__(in_channels, **kwargs)
        self.pool = _tf_max_pool if in_channels == _MAX_POOLED_E_CHANNELS else _tf_avg_pool

    def _forward(self, x: Tensor) -> list[Tensor]:
        branch3x3 = self.branch3x3_1(x)
        branch3x3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        return [
            self.branch1x1(x),
            torch.cat([self.branch3x3_2a(branch3x3), self.branch3x3_2b(branch3x3)], 1),
            torch.cat([self.branch3x3dbl_3a(branch3x3dbl), self.branch3x3dbl_3b(branch3x3dbl)], 1),
            self.branch_pool(self.pool(x)),
        ]


def fid_inception_v3() -> Inception3:
    """The FID Inception-v3 with default-initialised weights, in eval mode.

    Its ``state_dict`` keys and shapes are those of ``pt_inception-2015-12-05-6726825d.pth``
    (1,008-class ``fc`` included, no auxiliary head); load that file into it.
    """
    net = Inception3(
        num_classes=1008, aux_logits=False, init_weights=False,
        inception_blocks=[BasicConv2d, TFInceptionA, InceptionB, TFInceptionC, InceptionD,
                          TFInceptionE, InceptionAux],
    )
    return net.eval()

"""Image encoders that return feature maps (final pooling removed), in a registry.

All are built from torchvision and trained from scratch (no weight download).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from comm_diag.errors import InputError

SMALL_INPUT_PX = 128  # below this the ImageNet stems leave (almost) no spatial positions


class Encoder(nn.Module):
    """A backbone with its output width: forward(x: Bx3xHxW) -> BxCxhxw."""

    def __init__(self, body: nn.Module, out_channels: int):
        super().__init__()
        self.body = body
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # channels-last: oneDNN's convolutions and max-pools run ~15% faster on CPU
        return self.body(x.contiguous(memory_format=torch.channels_last))


def alexnet(image_size: int, width: float = 1.0, batch_norm: bool = False) -> Encoder:
    """torchvision's AlexNet ``features`` (5 convs, 3 max-pools), final pooling kept
    as in torchvision since the model's average pooling is what is removed.

    At 224 px and width 1 it is exactly torchvision's module (256x6x6 output).
    Changes, and why:
    - below 128 px the stem (11x11 conv, stride 4) becomes a 5x5 conv with stride 2,
      so a 64 px image still gives a 3x3 map (9 tokens) instead of 1x1;
    - ``width`` scales every channel count (64, 192, 384, 256, 256), so a CPU can
      train it in minutes (the CPU preset uses 0.25: 16 to 96 channels);
    - ``batch_norm`` adds a BatchNorm after every convolution ("AlexNet-BN", as in
      DeepCluster and RotNet); it learned texture faster in the README's CPU-preset
      measurements, at ~20% more time per step.
    """
    if width == 1.0 and image_size >= SMALL_INPUT_PX and not batch_norm:
        return Encoder(torchvision.models.alexnet(weights=None).features, 256)
    c = [max(8, int(round(k * width))) for k in (64, 192, 384, 256, 256)]
    stem = (nn.Conv2d(3, c[0], 11, stride=4, padding=2) if image_size >= SMALL_INPUT_PX
            else nn.Conv2d(3, c[0], 5, stride=2, padding=2))

    def act(channels: int) -> list[nn.Module]:
        return ([nn.BatchNorm2d(channels)] if batch_norm else []) + [nn.ReLU(inplace=True)]

    body = nn.Sequential(
        stem, *act(c[0]), nn.MaxPool2d(3, 2),
        nn.Conv2d(c[0], c[1], 5, padding=2), *act(c[1]), nn.MaxPool2d(3, 2),
        nn.Conv2d(c[1], c[2], 3, padding=1), *act(c[2]),
        nn.Conv2d(c[2], c[3], 3, padding=1), *act(c[3]),
        nn.Conv2d(c[3], c[4], 3, padding=1), *act(c[4]), nn.MaxPool2d(3, 2),
    )
    return Encoder(body, c[4])


def _resnet(block: type, layers: Sequence[int], image_size: int, width: float = 1.0) -> Encoder:
    """A ResNet (He et al., 2016) without avgpool and fc, from torchvision's blocks, with
    ``width`` scaling every stage (64, 128, 256, 512 planes x width; at width 1 it is
    torchvision's resnet18 / resnet50 body). Below 128 px the stem is a 3x3 conv without
    max-pool (CIFAR-style), with stride 2 from 64 px up: a 64 px image gives a 4x4 map (16
    tokens) at a quarter of the cost of stride 1, which would give 8x8 and train ~4x slower."""
    planes = [max(8, int(round(p * width))) for p in (64, 128, 256, 512)]
    net = torchvision.models.ResNet(block, list(layers))  # initialisation as torchvision's
    net.inplanes = planes[0]  # _make_layer reads and advances it
    stages = [net._make_layer(block, p, n, stride=1 if i == 0 else 2) for i, (p, n) in enumerate(zip(planes, layers))]
    small_stride = 1 if image_size < 64 else 2
    stem = (nn.Sequential(nn.Conv2d(3, planes[0], 3, stride=small_stride, padding=1, bias=False),
                          nn.BatchNorm2d(planes[0]),
                          nn.ReLU(inplace=True))
            if image_size < SMALL_INPUT_PX else
            nn.Sequential(nn.Conv2d(3, planes[0], 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(planes[0]),
                          nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)))
    body = nn.Sequential(*stem, *stages)
    for m in body.modules():  # torchvision's initialisation for the layers rebuilt here
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return Encoder(body, planes[3] * block.expansion)


ENCODERS: dict[str, Callable[[int, float], Encoder]] = {
    "alexnet": alexnet,
    "alexnet_bn": lambda size, width=1.0: alexnet(size, width, batch_norm=True),
    "resnet18": lambda size, width=1.0: _resnet(BasicBlock, (2, 2, 2, 2), size, width),
    "resnet50": lambda size, width=1.0: _resnet(Bottleneck, (3, 4, 6, 3), size, width),
}


def build_encoder(name: str, image_size: int, width: float = 1.0) -> Encoder:
    if name not in ENCODERS:
        raise InputError(f"unknown encoder {name!r}; choose from {', '.join(ENCODERS)}")
    enc = ENCODERS[name](image_size, width).to(memory_format=torch.channels_last)
    with torch.no_grad():
        h = enc(torch.zeros(1, 3, image_size, image_size))
    if h.shape[-1] < 1 or h.shape[-2] < 1:
        raise InputError(f"encoder {name} cannot take {image_size} px images")
    return enc


def feature_grid(encoder: Encoder, image_size: int) -> tuple[int, int]:
    """Spatial size (h, w) of the encoder's feature map for a given input size."""
    with torch.no_grad():
        h = encoder(torch.zeros(1, 3, image_size, image_size))
    return int(h.shape[-2]), int(h.shape[-1])

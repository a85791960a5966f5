"""TCNet: a tile classifier (TOI or not) with texture- and contour-aware deep supervision.

A tile is fit for counting when its cells are spread thin and evenly, with no red-cell
clumps, over-staining or debris: properties of texture (how crowded, how regular) and of
contours (whether cells have clean, separate outlines). TCNet makes both explicit:

- a ResNet-style backbone (stem + residual stages);
- a **texture head** on an early stage that, in training, regresses a local-binary-pattern
  (LBP) map of the tile, and a **contour head** on the stride-4 stage that regresses a Sobel
  edge-magnitude map (:func:`lbp_map`, :func:`edge_map` make both targets from the image);
- the heads' hidden features are pooled and concatenated with the backbone's, so the
  classifier itself sees what the heads learned ("aware"), not only the loss.

Input: ``(B, 3, 224, 224)`` normalised RGB. :meth:`TCNet.forward` returns ``(B, num_classes)``
logits; :meth:`TCNet.forward_all` also returns the auxiliary maps for the training loss
(:func:`tcnet_loss`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convs with a (projected) identity shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x), inplace=True)


class AuxHead(nn.Module):
    """A small dense head: hidden 3x3 conv features and a 1-channel map in ``[0, 1]``."""

    def __init__(self, in_channels: int, hidden: int) -> None:
        super().__init__()
        self.hidden = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 3, padding=1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
        )
        self.out = nn.Conv2d(hidden, 1, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.hidden(x)
        return h, torch.sigmoid(self.out(h))


@dataclass
class TCNetOutput:
    """Logits ``(B, C)``; texture and contour maps ``(B, 1, h, w)`` in ``[0, 1]``."""

    logits: torch.Tensor
    texture: torch.Tensor
    contour: torch.Tensor


class TCNet(nn.Module):
    """Backbone + texture/contour heads + a classifier over backbone and head features."""

    def __init__(
        self,
        stem: nn.Module,
        stages: nn.ModuleList,
        texture_head: AuxHead,
        contour_head: AuxHead,
        classifier: nn.Linear,
        texture_stage: int,
        contour_stage: int,
    ) -> None:
        super().__init__()
        self.stem = stem
        self.stages = stages
        self.texture_head = texture_head
        self.contour_head = contour_head
        self.classifier = classifier
        self.texture_stage = texture_stage
        self.contour_stage = contour_stage

    def forward_all(self, x: torch.Tensor) -> TCNetOutput:
        x = self.stem(x)
        texture = contour = None
        pooled = []
        for index, stage in enumerate(self.stages):
            x = stage(x)
            if index == self.contour_stage:
                hidden, contour = self.contour_head(x)
                pooled.append(F.adaptive_avg_pool2d(hidden, 1).flatten(1))
            if index == self.texture_stage:
                hidden, texture = self.texture_head(x)
                pooled.append(F.adaptive_avg_pool2d(hidden, 1).flatten(1))
        pooled.append(F.adaptive_avg_pool2d(x, 1).flatten(1))
        assert texture is not None and contour is not None
        return TCNetOutput(self.classifier(torch.cat(pooled, dim=1)), texture, contour)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_all(x).logits


def lbp_map(images: torch.Tensor) -> torch.Tensor:
    """8-neighbour local binary pattern of the grey image, ``(B, 1, H, W)`` in ``[0, 1]``.

    ``images``: ``(B, 3, H, W)`` float (any normalisation). Each pixel's code is the sum of
    ``2**k`` over the neighbours ``k`` not darker than it, divided by 255.
    """
    grey = images.mean(dim=1, keepdim=True)
    padded = F.pad(grey, (1, 1, 1, 1), mode="replicate")
    h, w = grey.shape[-2:]
    offsets = [(0, 0), (0, 1), (0, 2), (1, 2), (2, 2), (2, 1), (2, 0), (1, 0)]
    code = torch.zeros_like(grey)
    for bit, (dy, dx) in enumerate(offsets):
        neighbour = padded[..., dy : dy + h, dx : dx + w]
        code = code + (neighbour >= grey).float() * (2**bit)
    return code / 255.0


def edge_map(images: torch.Tensor) -> torch.Tensor:
    """Sobel gradient magnitude of the grey image, ``(B, 1, H, W)``, each image scaled to ``[0, 1]``."""
    grey = images.mean(dim=1, keepdim=True)
    kx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]], device=images.device)
    kernels = torch.stack([kx, kx.T])[:, None].to(grey.dtype)
    grad = F.conv2d(F.pad(grey, (1, 1, 1, 1), mode="replicate"), kernels)
    magnitude = torch.sqrt((grad**2).sum(dim=1, keepdim=True) + 1e-12)
    peak = magnitude.amax(dim=(2, 3), keepdim=True)
    return magnitude / peak.clamp(min=1e-6)


def tcnet_loss(
    output: TCNetOutput, images: torch.Tensor, labels: torch.Tensor, aux_weight: float = 0.4
) -> torch.Tensor:
    """Cross-entropy plus ``aux_weight`` x (L1 to the LBP map + L1 to the edge map).

    The targets are made from ``images`` (the network's own input) and average-pooled to each
    head's resolution, so no extra annotation is needed.
    """
    ce = F.cross_entropy(output.logits, labels)
    tex_target = F.adaptive_avg_pool2d(
        lbp_map(images), (int(output.texture.shape[-2]), int(output.texture.shape[-1]))
    )
    edge_target = F.adaptive_avg_pool2d(
        edge_map(images), (int(output.contour.shape[-2]), int(output.contour.shape[-1]))
    )
    aux = F.l1_loss(output.texture, tex_target) + F.l1_loss(output.contour, edge_target)
    return ce + aux_weight * aux


def assemble_tcnet(
    *,
    num_classes: int,
    stem_channels: int,
    widths: list[int],
    blocks: list[int],
    head_hidden: int,
    texture_stage: int,
    contour_stage: int,
) -> TCNet:
    """Wire a TCNet from numbers. Stage ``i`` has ``blocks[i]`` blocks of ``widths[i]``."""
    stem = nn.Sequential(
        nn.Conv2d(3, stem_channels, 7, 2, 3, bias=False),
        nn.BatchNorm2d(stem_channels),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, 1),
    )
    stages = nn.ModuleList()
    cin = stem_channels
    for index, (width, count) in enumerate(zip(widths, blocks, strict=True)):
        stride = 1 if index == 0 else 2
        layers = [
            BasicBlock(cin if i == 0 else width, width, stride if i == 0 else 1)
            for i in range(count)
        ]
        stages.append(nn.Sequential(*layers))
        cin = width
    texture_head = AuxHead(widths[texture_stage], head_hidden)
    contour_head = AuxHead(widths[contour_stage], head_hidden)
    classifier = nn.Linear(widths[-1] + 2 * head_hidden, num_classes)
    return TCNet(stem, stages, texture_head, contour_head, classifier, texture_stage, contour_stage)

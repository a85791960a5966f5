"""The model registry: architecture name -> builder.

A model card names its architecture with one of these keys and passes its ``config`` as the
builder's keyword arguments; all numbers live in the builders. Builders return modules with
random weights: weights are loaded separately (:func:`ml.cards.load_model`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import timm
from torch import nn

from ml.models.efficientnet_lite import HEAD_PREFIX as LITE_HEAD
from ml.models.efficientnet_lite import build_efficientnet_lite
from ml.models.mae import build_mae_vit_b, build_mae_vit_tiny
from ml.models.sam import build_sam_tiny, build_sam_vit_b, build_sam_vit_h, build_sam_vit_l
from ml.models.sam_lite import build_lite_medsam
from ml.models.tcnet import TCNet, assemble_tcnet
from ml.models.texture_unet import TextureUnet, assemble_texture_unet


def build_texture_unet(*, num_classes: int = 2) -> TextureUnet:
    """TextureUnet for 256 px thumbnails: 4 levels (32..256 channels), 24 Gabor filters."""
    return assemble_texture_unet(
        num_classes=num_classes,
        channels=[32, 64, 128, 256],
        texture_channels=[16, 16, 32, 32],
        gabor_orientations=8,
        gabor_scales=3,
        gabor_kernel=15,
        gabor_min_wavelength=4.0,
        stat_window=9,
    )


def build_texture_unet_tiny(*, num_classes: int = 2) -> TextureUnet:
    """A test-size TextureUnet: 3 levels (8..32 channels), 8 Gabor filters."""
    return assemble_texture_unet(
        num_classes=num_classes,
        channels=[8, 16, 32],
        texture_channels=[4, 4, 8],
        gabor_orientations=4,
        gabor_scales=2,
        gabor_kernel=7,
        gabor_min_wavelength=3.0,
        stat_window=5,
    )


def build_tcnet(*, num_classes: int = 2) -> TCNet:
    """TCNet at ResNet-18 size: widths 64..512, two blocks per stage."""
    return assemble_tcnet(
        num_classes=num_classes,
        stem_channels=64,
        widths=[64, 128, 256, 512],
        blocks=[2, 2, 2, 2],
        head_hidden=64,
        texture_stage=1,
        contour_stage=0,
    )


def build_tcnet_tiny(*, num_classes: int = 2) -> TCNet:
    """A test-size TCNet: widths 8..64, one block per stage."""
    return assemble_tcnet(
        num_classes=num_classes,
        stem_channels=8,
        widths=[8, 16, 32, 64],
        blocks=[1, 1, 1, 1],
        head_hidden=8,
        texture_stage=1,
        contour_stage=0,
    )


def build_timm_classifier(
    *, backbone: str = "convnext_atto", num_classes: int, img_size: int = 128
) -> nn.Module:
    """A timm image classifier, random weights (no hub is reachable here, so never pretrained).

    ``backbone`` is any timm model name; ``img_size`` is the square input side in px. It is passed
    to backbones that fix their input size (ViTs and their kin); convolutional backbones take
    any size and have no such argument. Input ``(B, 3, img_size, img_size)`` normalised RGB;
    output ``(B, num_classes)`` logits. An unknown ``backbone`` raises ``TypeError``, as any bad
    builder argument does, so a card naming one fails on its ``config`` field.
    """
    if not timm.is_model(backbone):
        raise TypeError(f"timm has no backbone {backbone!r}")
    try:
        return timm.create_model(
            backbone, pretrained=False, num_classes=num_classes, img_size=img_size
        )
    except TypeError as exc:
        if "img_size" not in str(exc):
            raise
        return timm.create_model(backbone, pretrained=False, num_classes=num_classes)


MODEL_REGISTRY: dict[str, Callable[..., nn.Module]] = {
    "texture_unet": build_texture_unet,
    "texture_unet_tiny": build_texture_unet_tiny,
    "tcnet": build_tcnet,
    "tcnet_tiny": build_tcnet_tiny,
    "sam_vit_h": build_sam_vit_h,
    "sam_vit_l": build_sam_vit_l,
    "sam_vit_b": build_sam_vit_b,
    "sam_tiny": build_sam_tiny,
    "lite_medsam": build_lite_medsam,
    "mae_vit_b": build_mae_vit_b,
    "mae_vit_tiny": build_mae_vit_tiny,
    "timm_classifier": build_timm_classifier,
    "efficientnet_lite": build_efficientnet_lite,
}

#: The classifier head's parameter prefix, where it is not ``head.`` (MAE's ViTs): the part a
#: fine-tuned classifier replaces when it starts from an encoder card.
CLASSIFIER_HEADS: dict[str, str] = {"efficientnet_lite": LITE_HEAD}

#: Architectures whose input side is a free config value (``img_size``), not fixed by their
#: weights: an encoder card of one of these fine-tunes at any side.
ANY_INPUT_SIZE = frozenset({"efficientnet_lite"})


def classifier_head(architecture: str) -> str:
    """The parameter prefix of ``architecture``'s classifier head."""
    return CLASSIFIER_HEADS.get(architecture, "head.")


class UnknownArchitectureError(KeyError):
    """The architecture name is not in :data:`MODEL_REGISTRY`."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown architecture {name!r}; known: {sorted(MODEL_REGISTRY)}")
        self.name = name


def build_model(architecture: str, config: dict[str, Any] | None = None) -> nn.Module:
    """Build ``architecture`` with ``config`` as keyword arguments, random weights, eval mode.

    Raises :class:`UnknownArchitectureError` for an unknown name and ``TypeError`` for a config
    key the builder does not take.
    """
    try:
        builder = MODEL_REGISTRY[architecture]
    except KeyError:
        raise UnknownArchitectureError(architecture) from None
    return builder(**(config or {})).eval()

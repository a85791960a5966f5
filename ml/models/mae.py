"""MAE ViT cell classifier: a timm ``VisionTransformer`` fine-tuned the MAE way.

MAE fine-tuning (He et al., ``models_vit.py``) replaces the class token with global average
pooling of the patch tokens followed by a LayerNorm (``fc_norm``); timm's VisionTransformer
does the same with ``global_pool="avg"``, and its parameter names match MAE's checkpoints, so
an encoder pre-trained by MAE loads into it directly (the decoder's keys are simply absent).

Input: ``(B, 3, 224, 224)`` normalised RGB. Output: ``(B, num_classes)`` logits; the predictor
applies the softmax.
"""

from __future__ import annotations

from timm.models.vision_transformer import VisionTransformer


def build_mae_vit_b(*, num_classes: int = 22, drop_path_rate: float = 0.1) -> VisionTransformer:
    """ViT-B/16 at 224 px (``vit_base_patch16_224``'s shape), average-pooled, random weights."""
    return assemble_vit(
        num_classes=num_classes,
        embed_dim=768,
        depth=12,
        num_heads=12,
        drop_path_rate=drop_path_rate,
    )


def build_mae_vit_tiny(*, num_classes: int = 22, drop_path_rate: float = 0.0) -> VisionTransformer:
    """ViT-Tiny/16 at 224 px (``vit_tiny_patch16_224``'s shape), for tests and quick runs."""
    return assemble_vit(
        num_classes=num_classes, embed_dim=192, depth=12, num_heads=3, drop_path_rate=drop_path_rate
    )


def assemble_vit(
    *,
    num_classes: int,
    embed_dim: int,
    depth: int,
    num_heads: int,
    drop_path_rate: float,
    img_size: int = 224,
    patch_size: int = 16,
) -> VisionTransformer:
    """A global-average-pooled ViT classifier (MAE fine-tuning layout) from the given numbers."""
    return VisionTransformer(
        img_size=img_size,
        patch_size=patch_size,
        num_classes=num_classes,
        global_pool="avg",
        fc_norm=True,
        embed_dim=embed_dim,
        depth=depth,
        num_heads=num_heads,
        mlp_ratio=4.0,
        qkv_bias=True,
        drop_path_rate=drop_path_rate,
    )

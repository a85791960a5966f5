"""Segment Anything builders: the official ViT-H/L/B and a tiny test-size variant.

The official architectures come from ``segment_anything``'s own builders, always with
``checkpoint=None``: their loader calls ``torch.load`` without ``weights_only``, so weights are
loaded by :func:`ml.cards.load_weights` instead. The tiny variant reuses the same parts
(``ImageEncoderViT``, ``PromptEncoder``, ``MaskDecoder``, ``TwoWayTransformer``) with small
numbers, so tests exercise the real code paths in seconds on a CPU.
"""

from __future__ import annotations

from functools import partial

import torch
from segment_anything import sam_model_registry
from segment_anything.modeling import (
    ImageEncoderViT,
    MaskDecoder,
    PromptEncoder,
    Sam,
    TwoWayTransformer,
)

# SAM's own normalisation, on the 0-255 scale (it lives in the model's buffers).
SAM_PIXEL_MEAN = (123.675, 116.28, 103.53)
SAM_PIXEL_STD = (58.395, 57.12, 57.375)


def build_sam_vit_h() -> Sam:
    """Official SAM ViT-H (636 M parameters), random weights, eval mode."""
    return sam_model_registry["vit_h"](checkpoint=None)


def build_sam_vit_l() -> Sam:
    """Official SAM ViT-L (308 M parameters), random weights, eval mode."""
    return sam_model_registry["vit_l"](checkpoint=None)


def build_sam_vit_b() -> Sam:
    """Official SAM ViT-B (94 M parameters), random weights, eval mode."""
    return sam_model_registry["vit_b"](checkpoint=None)


def build_sam_tiny(
    *,
    img_size: int = 256,
    encoder_embed_dim: int = 64,
    encoder_depth: int = 2,
    encoder_num_heads: int = 2,
    encoder_global_attn_indexes: tuple[int, ...] = (1,),
    window_size: int = 8,
    prompt_embed_dim: int = 32,
    decoder_mlp_dim: int = 64,
    decoder_num_heads: int = 2,
) -> Sam:
    """A test-size SAM built from the official parts (about 0.2 M parameters)."""
    return assemble_sam(
        img_size=img_size,
        encoder_embed_dim=encoder_embed_dim,
        encoder_depth=encoder_depth,
        encoder_num_heads=encoder_num_heads,
        encoder_global_attn_indexes=encoder_global_attn_indexes,
        window_size=window_size,
        prompt_embed_dim=prompt_embed_dim,
        decoder_mlp_dim=decoder_mlp_dim,
        decoder_num_heads=decoder_num_heads,
    )


def assemble_sam(
    *,
    img_size: int,
    encoder_embed_dim: int,
    encoder_depth: int,
    encoder_num_heads: int,
    encoder_global_attn_indexes: tuple[int, ...],
    window_size: int,
    prompt_embed_dim: int,
    decoder_mlp_dim: int,
    decoder_num_heads: int,
    patch_size: int = 16,
) -> Sam:
    """Wire SAM's parts exactly as ``segment_anything.build_sam`` does, from the given numbers.

    ``prompt_embed_dim`` must be divisible by 8 (the decoder upsamples through ``dim // 8``).
    """
    embedding_size = img_size // patch_size
    sam = Sam(
        image_encoder=ImageEncoderViT(
            depth=encoder_depth,
            embed_dim=encoder_embed_dim,
            img_size=img_size,
            mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            num_heads=encoder_num_heads,
            patch_size=patch_size,
            qkv_bias=True,
            use_rel_pos=True,
            global_attn_indexes=encoder_global_attn_indexes,
            window_size=window_size,
            out_chans=prompt_embed_dim,
        ),
        prompt_encoder=build_prompt_encoder(prompt_embed_dim, img_size, embedding_size),
        mask_decoder=build_mask_decoder(prompt_embed_dim, decoder_mlp_dim, decoder_num_heads),
        pixel_mean=list(SAM_PIXEL_MEAN),
        pixel_std=list(SAM_PIXEL_STD),
    )
    return sam.eval()


def build_prompt_encoder(embed_dim: int, img_size: int, embedding_size: int) -> PromptEncoder:
    """SAM's prompt encoder for ``img_size`` px inputs and an ``embedding_size`` square grid."""
    return PromptEncoder(
        embed_dim=embed_dim,
        image_embedding_size=(embedding_size, embedding_size),
        input_image_size=(img_size, img_size),
        mask_in_chans=16,
    )


def build_mask_decoder(embed_dim: int, mlp_dim: int, num_heads: int) -> MaskDecoder:
    """SAM's mask decoder (three multimask outputs), as ``segment_anything.build_sam`` wires it."""
    return MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(
            depth=2, embedding_dim=embed_dim, mlp_dim=mlp_dim, num_heads=num_heads
        ),
        transformer_dim=embed_dim,
        iou_head_depth=3,
        iou_head_hidden_dim=embed_dim,
    )

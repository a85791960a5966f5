"""MAE ViT cell classifier: a timm ``VisionTransformer`` fine-tuned the MAE way.

MAE fine-tuning (He et al., ``models_vit.py``) replaces the class token with global average
pooling of the patch tokens followed by a LayerNorm (``fc_norm``); timm's VisionTransformer
does the same with ``global_pool="avg"``, and its parameter names match MAE's checkpoints, so
an encoder pre-trained by MAE loads into it directly (the decoder's keys are simply absent).

Input: ``(B, 3, 224, 224)`` normalised RGB. Output: ``(B, num_classes)`` logits; the predictor
applies the softmax.

:class:`MaskedAutoencoder` is MAE's pre-training model (``models_mae.py``) around that same
encoder: with ``num_classes=0`` the encoder's state dict is exactly what the classifier loads
(all but ``head``), so ``python -m ml train mae-pretrain`` writes the encoder alone as a card.
"""

from __future__ import annotations

import torch
from timm.models.vision_transformer import Block, VisionTransformer
from torch import nn


def build_mae_vit_b(
    *, num_classes: int = 22, drop_path_rate: float = 0.1, img_size: int = 224
) -> VisionTransformer:
    """ViT-B/16 at 224 px (``vit_base_patch16_224``'s shape), average-pooled, random weights."""
    return assemble_vit(
        num_classes=num_classes,
        embed_dim=768,
        depth=12,
        num_heads=12,
        drop_path_rate=drop_path_rate,
        img_size=img_size,
    )


def build_mae_vit_tiny(
    *, num_classes: int = 22, drop_path_rate: float = 0.0, img_size: int = 224
) -> VisionTransformer:
    """ViT-Tiny/16 at 224 px (``vit_tiny_patch16_224``'s shape), for tests and quick runs
    (a smaller ``img_size`` makes them quicker still)."""
    return assemble_vit(
        num_classes=num_classes,
        embed_dim=192,
        depth=12,
        num_heads=3,
        drop_path_rate=drop_path_rate,
        img_size=img_size,
    )


#: Encoder builder -> MAE decoder (width, depth, heads): MAE's 512 x 8 for ViT-B, a small
#: one for the tiny encoder.
MAE_DECODERS = {"mae_vit_b": (512, 8, 16), "mae_vit_tiny": (96, 2, 3)}


class MaskedAutoencoder(nn.Module):
    """MAE pre-training: mask most patches, encode the rest, reconstruct the masked pixels.

    ``encoder`` is a class-token ViT from :func:`assemble_vit` with ``num_classes=0``; its
    ``fc_norm`` serves as MAE's final encoder norm, so the encoder's state dict stays the
    classifier's. ``forward(x, noise)`` takes ``(B, 3, S, S)`` normalised RGB and ``noise``
    ``(B, L)`` uniform in [0, 1) (``L`` patches; the lowest ``(1 - mask_ratio) L`` are kept),
    and returns the mean squared error over the masked patches (MSE, SPEC §2.4).
    """

    def __init__(
        self,
        encoder: VisionTransformer,
        *,
        decoder_dim: int,
        decoder_depth: int,
        decoder_heads: int,
        mask_ratio: float = 0.75,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.mask_ratio = mask_ratio
        self.patch = int(encoder.patch_embed.patch_size[0])
        n = encoder.patch_embed.num_patches
        dim = encoder.embed_dim
        self.decoder_embed = nn.Linear(dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.decoder_pos_embed = nn.Parameter(torch.randn(1, n + 1, decoder_dim) * 0.02)
        self.decoder_blocks = nn.Sequential(
            *[
                Block(decoder_dim, decoder_heads, mlp_ratio=4.0, qkv_bias=True)
                for _ in range(decoder_depth)
            ]
        )
        self.decoder_norm = nn.LayerNorm(decoder_dim)
        self.decoder_pred = nn.Linear(decoder_dim, self.patch * self.patch * 3)
        nn.init.normal_(self.mask_token, std=0.02)

    @property
    def num_patches(self) -> int:
        return int(self.encoder.patch_embed.num_patches)

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, S, S)`` -> ``(B, L, p * p * 3)``, patches row-major."""
        b, c, h, w = x.shape
        p = self.patch
        x = x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)
        return x.reshape(b, (h // p) * (w // p), p * p * c)

    def forward(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        enc = self.encoder
        pos, cls_token = enc.pos_embed, enc.cls_token
        assert pos is not None and cls_token is not None  # assemble_vit's ViT has both
        tokens = enc.patch_embed(x) + pos[:, 1:]
        b, n, d = tokens.shape
        keep = int(n * (1 - self.mask_ratio))
        shuffle = torch.argsort(noise, dim=1)
        restore = torch.argsort(shuffle, dim=1)
        kept = torch.gather(tokens, 1, shuffle[:, :keep, None].expand(-1, -1, d))
        cls = (cls_token + pos[:, :1]).expand(b, -1, -1)
        latent = enc.fc_norm(enc.blocks(torch.cat([cls, kept], dim=1)))
        y = self.decoder_embed(latent)
        masked = self.mask_token.expand(b, n - keep, -1)
        patches = torch.cat([y[:, 1:], masked], dim=1)
        patches = torch.gather(patches, 1, restore[:, :, None].expand(-1, -1, y.shape[2]))
        y = torch.cat([y[:, :1], patches], dim=1) + self.decoder_pos_embed
        pred = self.decoder_pred(self.decoder_norm(self.decoder_blocks(y)))[:, 1:]
        mask = torch.ones(b, n, device=x.device)
        mask[:, :keep] = 0
        mask = torch.gather(mask, 1, restore)
        per_patch = ((pred - self.patchify(x)) ** 2).mean(dim=-1)
        return (per_patch * mask).sum() / mask.sum()


def build_masked_autoencoder(
    encoder_architecture: str, *, img_size: int = 224
) -> MaskedAutoencoder:
    """MAE around a fresh ``mae_vit_b`` / ``mae_vit_tiny`` encoder with ``num_classes=0``."""
    builders = {"mae_vit_b": build_mae_vit_b, "mae_vit_tiny": build_mae_vit_tiny}
    encoder = builders[encoder_architecture](num_classes=0, drop_path_rate=0.0, img_size=img_size)
    dim, depth, heads = MAE_DECODERS[encoder_architecture]
    return MaskedAutoencoder(encoder, decoder_dim=dim, decoder_depth=depth, decoder_heads=heads)


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

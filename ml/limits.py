"""How much one image may make the server decode: the one place these limits are set.

A file's header can declare any size; a 1 KB PNG may claim 100,000 x 100,000 px, and a slide
without a pyramid makes every thumbnail decode all of level 0. These limits turn such files
into a readable error before any pixel is decoded. :func:`apply` sets Pillow's and libvips'
own limits to the same figures; ``ml.slide`` and ``ml.pyramid`` call it on import, so every
process that reads images (web server, ingest worker, analysis, CLI) runs under them.
"""

from __future__ import annotations

import pyvips
from PIL import Image

#: Most pixels a flat image (JPEG/PNG/TIFF/WebP photo) may declare: 1 Gpx, e.g. 31,623 px
#: square; a smear photo is a few Mpx. Pillow's MAX_IMAGE_PIXELS is set to the same figure.
MAX_IMAGE_PIXELS = 1_000_000_000
#: Most pixels of the pyramid level a thumbnail is reduced from (read strip by strip).
MAX_THUMBNAIL_SOURCE_PIXELS = MAX_IMAGE_PIXELS
#: Most pixels one region read may decode at once (RGBA in memory: 4 bytes each, 256 MiB).
MAX_READ_PIXELS = 64 * 1024 * 1024
#: libvips' operation cache: memory and open files it may keep between calls.
VIPS_CACHE_MAX_MEM = 128 * 1024 * 1024
VIPS_CACHE_MAX_FILES = 32


def apply() -> None:
    """Set Pillow's and libvips' process-wide limits to the figures above (idempotent)."""
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    pyvips.cache_set_max_mem(VIPS_CACHE_MAX_MEM)
    pyvips.cache_set_max_files(VIPS_CACHE_MAX_FILES)
    # Loaders libvips marks as untrusted (ImageMagick, PDF, MATLAB, ...) never see an upload.
    pyvips.block_untrusted_set(True)

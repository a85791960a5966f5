"""ROI-SEG: per slide, the factor-100 thumbnail and a binary ROI mask of the same size.

Layout: ``roi_seg/<split>/images/<slide>.png`` (RGB) and ``roi_seg/<split>/masks/<slide>.png``
(uint8, 255 inside the ROI, 0 outside), both ``ceil(H / 100) x ceil(W / 100)``.
"""

from __future__ import annotations

import numpy as np

from ml.datasets.export.context import Context, Format
from ml.datasets.export.images import png
from ml.datasets.export.samples import SlideExport
from ml.geometry import polygons_to_mask, thumbnail_frame
from ml.slide import SlideReader


class RoiSeg(Format):
    name = "roi_seg"

    def add(self, slide: SlideExport, reader: SlideReader, split: str, ctx: Context) -> None:
        if not slide.roi and not any(s.stage == "roi" for s in slide.sources):
            return
        thumb = reader.thumbnail_by_factor(ctx.options.thumbnail_factor)
        frame = thumbnail_frame(thumb.shape[:2], (slide.width, slide.height))
        polygons = [[np.asarray(r, dtype=np.float64) for r in rings] for rings in slide.roi]
        mask = polygons_to_mask(polygons, frame, thumb.shape[:2]) if polygons else None
        if mask is None:
            mask = np.zeros(thumb.shape[:2], dtype=bool)
        ctx.sink.write(f"roi_seg/{split}/images/{slide.key}.png", png(thumb))
        ctx.sink.write(f"roi_seg/{split}/masks/{slide.key}.png", png(mask.astype(np.uint8) * 255))

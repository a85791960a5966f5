"""TOI-CLS: every labelled grid tile as a 1600 x 1600 image, in ``toi/`` or ``non_toi/``.

Layout: ``toi_cls/<split>/{toi,non_toi}/<slide>_c<col>_r<row>.png`` (an ImageFolder per
split). Tiles are read at level 0, ``options.tile_size`` square (the project's TOI grid).
"""

from __future__ import annotations

from ml.datasets.export.context import Context, Format
from ml.datasets.export.images import png, read_tiles, tile_stem
from ml.datasets.export.samples import SlideExport
from ml.slide import SlideReader


class ToiCls(Format):
    name = "toi_cls"

    def add(self, slide: SlideExport, reader: SlideReader, split: str, ctx: Context) -> None:
        labels = {(t.tile.col, t.tile.row): t.label for t in slide.tiles}
        tiles = [t.tile for t in slide.tiles]
        for tile, image in read_tiles(reader, tiles, ctx.options.tile_size):
            label = labels[(tile.col, tile.row)]
            ctx.sink.write(f"toi_cls/{split}/{label}/{tile_stem(slide.key, tile)}.png", png(image))

"""The one entry point: :func:`write_export` writes the chosen formats of some slides."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ml.datasets.export import manifest
from ml.datasets.export.cell_cls import CellCrops
from ml.datasets.export.cell_seg import CellSeg
from ml.datasets.export.coco import Coco
from ml.datasets.export.context import Context, ExportOptions, Format
from ml.datasets.export.errors import ClassMapIncomplete, ExportError, UnknownFormat
from ml.datasets.export.labelme_tiles import Labelme
from ml.datasets.export.qupath_geojson import QuPath
from ml.datasets.export.roi_seg import RoiSeg
from ml.datasets.export.samples import ClassInfo, SlideExport
from ml.datasets.export.sink import Sink
from ml.datasets.export.split import DEFAULT_FRACTIONS, split_by_slide
from ml.datasets.export.toi_cls import ToiCls
from ml.slide import open_slide

#: Every format, in the order they are written.
FORMATS = (
    "roi_seg",
    "toi_cls",
    "cell_seg",
    "cell_cls_labeled",
    "cell_cls_unlabeled",
    "coco",
    "labelme",
    "qupath",
)
#: Formats whose files name a cell's class (its label must be in the class map).
LABELLED_FORMATS = frozenset({"cell_cls_labeled", "coco", "qupath", "labelme"})
MANIFEST = "manifest.json"

#: ``progress(done, total, message)``, called after each slide's format is written.
Progress = Callable[[int, int, str], None]


def check_formats(formats: Iterable[str]) -> list[str]:
    """The formats in writing order; raises :class:`UnknownFormat` or :class:`ExportError`."""
    chosen = set(formats)
    unknown = chosen - set(FORMATS)
    if unknown:
        raise UnknownFormat(unknown, FORMATS)
    if not chosen:
        raise ExportError("choose at least one format", data={"formats": []})
    return [f for f in FORMATS if f in chosen]


def uncovered_labels(slides: Iterable[SlideExport], class_map: Mapping[str, Any]) -> set[str]:
    """Cell labels (other than "", not classified) that ``class_map`` does not hold."""
    return {c.label for s in slides for c in s.cells if c.label and c.label not in class_map}


def write_export(
    slides: Sequence[SlideExport],
    *,
    formats: Iterable[str],
    sink: Sink,
    class_map: Mapping[str, ClassInfo],
    seed: int = 0,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    options: ExportOptions | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write ``formats`` of ``slides`` into ``sink``, then ``manifest.json``; return the manifest.

    Checks come first and raise :class:`ExportError` before anything is written: unknown
    formats, no slides, repeated slide keys, cell labels outside ``class_map``. The sink is not
    committed here: use it as a context manager so a failure removes the partial output.
    """
    chosen = check_formats(formats)
    if not slides:
        raise ExportError("choose at least one slide", data={"slides": []})
    missing = uncovered_labels(slides, class_map)
    if missing and LABELLED_FORMATS & set(chosen):
        raise ClassMapIncomplete(missing)
    options = options or ExportOptions()
    split = split_by_slide([s.key for s in slides], seed=seed, fractions=fractions)
    ctx = Context(sink=sink, options=options, class_map=class_map)
    writers = _writers(chosen)
    total, done = len(slides) * len(writers) + 1, 0
    for slide in slides:
        with open_slide(slide.path) as reader:
            for writer in writers:
                writer.add(slide, reader, split[slide.key], ctx)
                done += 1
                if progress:
                    progress(done, total, f"{writer.name} of {slide.name or slide.key}")
    for writer in writers:
        writer.finish(ctx)
    document = manifest.build(
        slides=slides,
        formats=chosen,
        class_map=class_map,
        split=split,
        seed=seed,
        fractions=fractions,
        options=options,
        files=sink.files,
    )
    sink.write(MANIFEST, json.dumps(document, indent=1).encode())
    if progress:
        progress(total, total, "manifest written")
    return document


def _writers(chosen: Sequence[str]) -> list[Format]:
    writers: list[Format] = []
    crops_added = False
    for name in chosen:
        if name in ("cell_cls_labeled", "cell_cls_unlabeled"):
            if not crops_added:
                writers.append(
                    CellCrops(
                        labeled="cell_cls_labeled" in chosen,
                        unlabeled="cell_cls_unlabeled" in chosen,
                    )
                )
                crops_added = True
            continue
        writers.append(_SINGLE[name]())
    return writers


_SINGLE: dict[str, Callable[[], Format]] = {
    "roi_seg": RoiSeg,
    "toi_cls": ToiCls,
    "cell_seg": CellSeg,
    "coco": Coco,
    "labelme": Labelme,
    "qupath": QuPath,
}

"""Training-data and interchange exports, Django-free: the app and the CLI share them.

Input: :class:`SlideExport` per slide (plain data, level-0 px). Output: files in a
:class:`Sink` (a folder, or a ZIP streamed to any byte stream) plus ``manifest.json``.
Formats (one module each; layouts in their docstrings): ``roi_seg``, ``toi_cls``,
``cell_seg``, ``cell_cls_labeled``, ``cell_cls_unlabeled``, ``coco``, ``labelme``, ``qupath``.
"""

from __future__ import annotations

from ml.datasets.export.context import ExportOptions
from ml.datasets.export.errors import ClassMapIncomplete, ExportError, UnknownFormat
from ml.datasets.export.samples import (
    NON_TOI,
    TOI,
    CellSample,
    ClassInfo,
    SlideExport,
    SourceSet,
    TileSample,
    compact,
)
from ml.datasets.export.sink import PARTIAL, FolderSink, Sink, ZipFileSink, ZipSink
from ml.datasets.export.split import SPLITS, split_by_slide
from ml.datasets.export.writer import (
    FORMATS,
    MANIFEST,
    check_formats,
    uncovered_labels,
    write_export,
)

__all__ = [
    "FORMATS",
    "MANIFEST",
    "NON_TOI",
    "PARTIAL",
    "SPLITS",
    "TOI",
    "CellSample",
    "ClassInfo",
    "ClassMapIncomplete",
    "ExportError",
    "ExportOptions",
    "FolderSink",
    "Sink",
    "SlideExport",
    "SourceSet",
    "TileSample",
    "UnknownFormat",
    "ZipFileSink",
    "ZipSink",
    "check_formats",
    "compact",
    "split_by_slide",
    "uncovered_labels",
    "write_export",
]

"""``manifest.json``: what an export holds and where it came from.

Keys: ``format_version``; ``software`` (bmadcc, python, numpy versions); ``created_at`` (UTC
ISO 8601); ``formats``; ``options`` (tile and crop sizes, box offset, ...); ``class_map``
(``[{"key", "name", "colour", "id"}]`` in order, ``id`` the 1-based COCO category id);
``split`` (``{"seed", "fractions", "by": "slide", "slides": {key: side}}``); ``slides``
(``[{"key", "name", "sha256", "width", "height", "split", "sources": [...]}]`` with each
stage's source set and its annotation version); ``files`` (``{path: {"sha256", "bytes"}}`` of
every other file in the export). The manifest does not list itself.
"""

from __future__ import annotations

import platform
import tomllib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from ml.datasets.export.context import ExportOptions
from ml.datasets.export.samples import ClassInfo, SlideExport
from ml.datasets.export.sink import FileRecord

FORMAT_VERSION = 1


@cache
def software_version() -> str:
    """bmadcc's version from pyproject.toml (the package is not installed as a distribution)."""
    pyproject = Path(__file__).resolve().parents[3] / "pyproject.toml"
    try:
        return str(tomllib.loads(pyproject.read_text())["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def build(
    *,
    slides: Sequence[SlideExport],
    formats: Sequence[str],
    class_map: Mapping[str, ClassInfo],
    split: Mapping[str, str],
    seed: int,
    fractions: Sequence[float],
    options: ExportOptions,
    files: Mapping[str, FileRecord],
) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "software": {
            "bmadcc": software_version(),
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "formats": list(formats),
        "options": options.to_dict(),
        "class_map": [
            {"key": c.key, "name": c.name, "colour": c.colour, "id": i + 1}
            for i, c in enumerate(class_map.values())
        ],
        "split": {"by": "slide", "seed": seed, "fractions": list(fractions), "slides": dict(split)},
        "slides": [
            {
                "key": s.key,
                "name": s.name,
                "sha256": s.sha256,
                "width": s.width,
                "height": s.height,
                "split": split[s.key],
                "cells": len(s.cells),
                "sources": [source.to_dict() for source in s.sources],
            }
            for s in slides
        ],
        "files": {name: {"sha256": r.sha256, "bytes": r.bytes} for name, r in files.items()},
    }

"""Segment Anything assist: one click on a cell (level-0 px) -> a proposed outline (level-0 px).

The inference lives in ``ml`` (:class:`ml.models.sam_boxes.ClickAssist`: the click becomes the
box of the nucleated cell under it, the box becomes a mask). The model is the
``cell_segmentation`` model card in ``settings.MODEL_DIR``, loaded through :mod:`ml.cards` (so
its sha256 is checked); ``scripts/setup.sh`` installs the LiteMedSAM card there, and an
operator's official ViT-B/L/H checkpoint works the same way once it has a card.

This module keeps what is the app's: finding the card, the region read around a click, a small
LRU of region embeddings (key: slide, region origin) so later clicks inside a cached region only
run the decoder, the GeoJSON outline, and the error mapping.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from django.conf import settings

from ml.cards import ModelCard, ModelCardError, discover_cards
from ml.device import pick_device
from ml.geometry import Frame, mask_to_polygons
from ml.lru import LRU
from ml.models.sam_boxes import (
    BoxPromptSam,
    ClickAssist,
    Embedded,
    NothingAtClick,
)
from ml.slide import SlideReader

from .errors import NothingFound, SamNotInstalled
from .validation import MAX_VERTICES

#: Embeddings kept per process.
CACHE_SIZE = 16
#: A cached region serves a click at least this fraction of its side inside its edges.
REUSE_MARGIN = 0.125


@dataclass(frozen=True)
class Proposal:
    """``polygon``: GeoJSON Polygon, level-0 px. ``score``: SAM's predicted IoU."""

    polygon: dict[str, Any]
    score: float
    cached: bool


@dataclass(frozen=True)
class _Region:
    window: np.ndarray
    embedded: Embedded


class SamAssist:
    """:class:`ClickAssist` with a per-region embedding cache. Thread-safe (one click at a time)."""

    def __init__(self, assist: ClickAssist, name: str) -> None:
        self.assist = assist
        self.name = name
        self._cache: LRU[tuple[Any, int, int], _Region] = LRU(CACHE_SIZE)
        self._lock = threading.Lock()

    def propose(self, reader: SlideReader, slide_key: Any, x: float, y: float) -> Proposal:
        """Outline the cell under the level-0 click ``(x, y)`` of the slide ``reader`` reads."""
        width, height = reader.dimensions
        if not (0 <= x < width and 0 <= y < height):
            raise NothingFound(f"the click ({x:g}, {y:g}) is outside the slide")
        mpp = reader.mpp[0]
        with self._lock:
            (ox, oy), region, cached = self._region(reader, slide_key, x, y, mpp)
            click = (x - ox, y - oy)
            try:
                found = self.assist.mask_at(region.window, region.embedded, click, mpp)
            except NothingAtClick as exc:
                raise NothingFound(str(exc)) from exc
        frame = Frame(ox=ox + int(found.box[0]), oy=oy + int(found.box[1]))
        local = np.array([click[0] - found.box[0], click[1] - found.box[1]])
        polygon = _outline(_component_at(found.mask, local), frame)
        return Proposal(polygon=polygon, score=found.score, cached=cached)

    def _region(
        self, reader: SlideReader, slide_key: Any, x: float, y: float, mpp: float | None
    ) -> tuple[tuple[int, int], _Region, bool]:
        """The embedded region holding ``(x, y)``: its origin, itself and whether it was cached."""

        def serves(key: tuple[Any, int, int], region: _Region) -> bool:
            slide, ox, oy = key
            h, w = region.window.shape[:2]
            mx, my = REUSE_MARGIN * w, REUSE_MARGIN * h
            inside = ox + mx <= x < ox + w - mx and oy + my <= y < oy + h - my
            return slide == slide_key and (inside or (w, h) == reader.dimensions)

        found = self._cache.find(serves)
        if found is not None:
            (_, ox, oy), region = found
            return (ox, oy), region, True
        ox, oy, w, h = region_around(x, y, reader.dimensions, self.assist.window_px(mpp))
        window = reader.read_region((ox, oy), 0, (w, h))
        region = _Region(window, self.assist.embed(window))
        region = self._cache.put((slide_key, ox, oy), region)
        return (ox, oy), region, False


def region_around(
    x: float, y: float, slide_wh: tuple[int, int], side: int
) -> tuple[int, int, int, int]:
    """The ``side`` square (or the whole slide, if smaller) centred on ``(x, y)``, inside it.

    Returns ``(ox, oy, w, h)`` in level-0 px.
    """
    width, height = slide_wh
    w, h = min(side, width), min(side, height)
    ox = int(min(max(round(x) - w // 2, 0), width - w))
    oy = int(min(max(round(y) - h // 2, 0), height - h))
    return ox, oy, w, h


def _component_at(mask: np.ndarray, point: np.ndarray) -> np.ndarray:
    """The connected part of ``mask`` under the click (mask px), else the part nearest to it."""
    _, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    col, row = int(point[0]), int(point[1])
    inside = 0 <= row < labels.shape[0] and 0 <= col < labels.shape[1]
    label = labels[row, col] if inside else 0
    if label == 0:
        rows, cols = np.nonzero(labels)
        nearest = np.argmin((rows - row) ** 2 + (cols - col) ** 2)
        label = labels[rows[nearest], cols[nearest]]
    return labels == label


def _outline(mask: np.ndarray, frame: Frame) -> dict[str, Any]:
    """The mask's outer ring as a GeoJSON Polygon in the frame's parent (level-0) px."""
    for tolerance in (1.0, 2.0, 4.0, 8.0):
        polygons = mask_to_polygons(mask, frame, simplify_px=tolerance)
        ring = max((p[0] for p in polygons), key=_ring_area)
        if len(ring) <= MAX_VERTICES // 2 and len(ring) >= 3:
            break
    coords = np.round(ring, 1).tolist()
    if coords[0] != coords[-1]:
        coords.append(coords[0])
    return {"type": "Polygon", "coordinates": [coords]}


def _ring_area(ring: np.ndarray) -> float:
    return abs(cv2.contourArea(ring.astype(np.float32)))


# -- the process-wide assist ------------------------------------------------------------------
_installed: SamAssist | None = None
_install_lock = threading.Lock()


def forget() -> None:
    """Drop the loaded model, so the next click looks in ``MODEL_DIR`` again."""
    global _installed
    with _install_lock:
        _installed = None


def find_card(model_dir: Path) -> ModelCard | None:
    """The ``cell_segmentation`` card in ``model_dir``, if any (raises ModelCardError)."""
    return discover_cards(model_dir).get("cell_segmentation")


def get_assist() -> SamAssist:
    """The loaded assist, loading the card's model on first use; else 503."""
    global _installed
    with _install_lock:
        if _installed is None:
            _installed = _load(Path(settings.MODEL_DIR))
        return _installed


def _load(model_dir: Path) -> SamAssist:
    try:
        card = find_card(model_dir)
        if card is None:
            raise SamNotInstalled(
                f"Segment Anything is not installed: no cell_segmentation model card in "
                f"{model_dir}; `.venv/bin/python -m ml install-models --models {model_dir}` "
                "installs LiteMedSAM"
            )
        sam = BoxPromptSam.from_card(card, pick_device())
    except ModelCardError as exc:
        raise SamNotInstalled(f"Segment Anything cannot be loaded: {exc}") from exc
    return SamAssist(ClickAssist(sam), card.name)


def status() -> dict[str, Any]:
    """``{installed, model}`` without loading weights (a valid card on disk counts)."""
    if _installed is not None:
        return {"installed": True, "model": _installed.name}
    try:
        card = find_card(Path(settings.MODEL_DIR))
    except ModelCardError:
        card = None
    return {"installed": card is not None, "model": card.name if card else None}

"""Segment Anything assist: one click on a cell (level-0 px) -> a proposed outline (level-0 px).

The server reads the ``REGION`` x ``REGION`` level-0 region around the click, embeds it with
SAM's image encoder once, and keeps the embedding (key: slide, region origin) in a small LRU,
so later clicks inside a cached region only run the prompt encoder and mask decoder.

The model is an official checkpoint found in ``settings.MODEL_DIR / "sam"``
(``sam_vit_b_01ec64.pth``, ``sam_vit_l_0b3195.pth`` or ``sam_vit_h_4b8939.pth``; the file name
says which architecture). :func:`use_model` installs a model directly: tests pass a tiny,
randomly initialised SAM built from the official parts, so the real code path runs.
"""

from __future__ import annotations

import pickle
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from django.conf import settings
from segment_anything import SamPredictor
from segment_anything.modeling import Sam

from ml.device import pick_device
from ml.geometry import Frame, mask_to_polygons
from ml.lru import LRU
from ml.models.sam import build_sam_vit_b, build_sam_vit_h, build_sam_vit_l
from ml.slide import SlideReader

from .errors import NothingFound, SamNotInstalled
from .validation import MAX_VERTICES

#: Side of the level-0 region embedded around a click (SAM's own input size).
REGION = 1024
#: A cached region serves a click at least this far inside its edges (level-0 px).
REUSE_MARGIN = 128
#: Embeddings kept per process.
CACHE_SIZE = 16

OFFICIAL_BUILDERS: dict[str, Callable[[], Sam]] = {
    "vit_b": build_sam_vit_b,
    "vit_l": build_sam_vit_l,
    "vit_h": build_sam_vit_h,
}
_ARCH_IN_NAME = re.compile(r"vit_([blh])")


@dataclass(frozen=True)
class Proposal:
    """``polygon``: GeoJSON Polygon, level-0 px. ``score``: SAM's predicted IoU."""

    polygon: dict[str, Any]
    score: float
    cached: bool


@dataclass(frozen=True)
class _Embedding:
    features: torch.Tensor
    original_size: tuple[int, int]
    input_size: tuple[int, int]


class SamAssist:
    """A SAM predictor with a per-region embedding cache. Thread-safe (one click at a time)."""

    def __init__(self, model: Sam, name: str, *, device: torch.device | None = None) -> None:
        self.name = name
        self.device = device or pick_device()
        self.predictor = SamPredictor(model.to(self.device).eval())
        self._cache: LRU[tuple[Any, int, int], _Embedding] = LRU(CACHE_SIZE)
        self._lock = threading.Lock()

    def propose(self, reader: SlideReader, slide_key: Any, x: float, y: float) -> Proposal:
        """Outline the object under the level-0 click ``(x, y)`` of the slide ``reader`` reads."""
        width, height = reader.dimensions
        if not (0 <= x < width and 0 <= y < height):
            raise NothingFound(f"the click ({x:g}, {y:g}) is outside the slide")
        with self._lock, torch.no_grad():
            origin, cached = self._embed(reader, slide_key, x, y)
            local = np.array([[x - origin[0], y - origin[1]]], dtype=np.float32)
            masks, scores, _ = self.predictor.predict(
                point_coords=local, point_labels=np.array([1]), multimask_output=True
            )
        mask, score = _best_mask(masks, scores, local[0])
        polygon = _outline(_component_at(mask, local[0]), Frame(ox=origin[0], oy=origin[1]))
        return Proposal(polygon=polygon, score=score, cached=cached)

    def _embed(
        self, reader: SlideReader, slide_key: Any, x: float, y: float
    ) -> tuple[tuple[int, int], bool]:
        """Set the predictor to a region holding ``(x, y)``; returns its origin and cache hit."""

        def serves(key: tuple[Any, int, int], emb: _Embedding) -> bool:
            slide, ox, oy = key
            h, w = emb.original_size
            inside = (
                ox + REUSE_MARGIN <= x < ox + w - REUSE_MARGIN
                and oy + REUSE_MARGIN <= y < oy + h - REUSE_MARGIN
            )
            return slide == slide_key and (inside or (w, h) == reader.dimensions)

        found = self._cache.find(serves)
        if found is not None:
            (_, ox, oy), emb = found
            self._restore(emb)
            return (ox, oy), True
        ox, oy, w, h = region_around(x, y, reader.dimensions)
        self.predictor.set_image(reader.read_region((ox, oy), 0, (w, h)))
        self._cache.put(
            (slide_key, ox, oy),
            _Embedding(
                self.predictor.features, self.predictor.original_size, self.predictor.input_size
            ),
        )
        return (ox, oy), False

    def _restore(self, emb: _Embedding) -> None:
        self.predictor.features = emb.features
        self.predictor.original_size = emb.original_size
        self.predictor.input_size = emb.input_size
        self.predictor.is_image_set = True


def region_around(x: float, y: float, slide_wh: tuple[int, int]) -> tuple[int, int, int, int]:
    """The ``REGION``-square (or the whole slide, if smaller) centred on ``(x, y)``, inside it.

    Returns ``(ox, oy, w, h)`` in level-0 px.
    """
    width, height = slide_wh
    w, h = min(REGION, width), min(REGION, height)
    ox = int(min(max(round(x) - w // 2, 0), width - w))
    oy = int(min(max(round(y) - h // 2, 0), height - h))
    return ox, oy, w, h


def _best_mask(
    masks: np.ndarray, scores: np.ndarray, point: np.ndarray
) -> tuple[np.ndarray, float]:
    """The highest-scoring of SAM's masks that covers the click; any mask if none does."""
    col, row = int(point[0]), int(point[1])
    covering = [i for i in range(len(masks)) if masks[i][row, col]]
    candidates = covering or [i for i in range(len(masks)) if masks[i].any()]
    if not candidates:
        raise NothingFound("Segment Anything found no object at the click")
    best = max(candidates, key=lambda i: scores[i])
    return masks[best], float(scores[best])


def _component_at(mask: np.ndarray, point: np.ndarray) -> np.ndarray:
    """The connected part of ``mask`` under the click, else the part nearest to it."""
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    col, row = int(point[0]), int(point[1])
    label = labels[row, col]
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


def use_model(model: Sam | None, name: str = "custom") -> None:
    """Install ``model`` as the assist's SAM (``None`` forgets it and looks on disk again)."""
    global _installed
    with _install_lock:
        _installed = SamAssist(model, name) if model is not None else None


def find_checkpoint(model_dir: Path) -> tuple[Path, str] | None:
    """The first ``*.pth`` under ``model_dir/sam`` whose name says vit_b, vit_l or vit_h."""
    for path in sorted((model_dir / "sam").glob("*.pth")):
        match = _ARCH_IN_NAME.search(path.name)
        if match:
            return path, f"vit_{match.group(1)}"
    return None


def get_assist() -> SamAssist:
    """The installed assist, loading an official checkpoint on first use; else 503."""
    global _installed
    with _install_lock:
        if _installed is None:
            _installed = _load_from_disk(Path(settings.MODEL_DIR))
        return _installed


def _load_from_disk(model_dir: Path) -> SamAssist:
    found = find_checkpoint(model_dir)
    if found is None:
        raise SamNotInstalled(
            "Segment Anything is not installed: put an official checkpoint "
            "(sam_vit_b_01ec64.pth, sam_vit_l_0b3195.pth or sam_vit_h_4b8939.pth) in "
            f"{model_dir / 'sam'}"
        )
    path, arch = found
    model = OFFICIAL_BUILDERS[arch]()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
    except (RuntimeError, OSError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        # torch.load and load_state_dict report a bad file through all of these.
        raise SamNotInstalled(
            f"Segment Anything checkpoint {path} cannot be loaded: {exc}"
        ) from exc
    return SamAssist(model, path.name)


def status() -> dict[str, Any]:
    """``{installed, model}`` without loading weights (a checkpoint on disk counts)."""
    if _installed is not None:
        return {"installed": True, "model": _installed.name}
    found = find_checkpoint(Path(settings.MODEL_DIR))
    return {"installed": found is not None, "model": found[0].name if found else None}

"""Stage 3, cells: segment every TOI at level 0 and turn masks into level-0 cell records.

Each TOI is read at level 0 with a context ``margin`` on every side (clipped to the slide), so
a cell cut by the tile's border is seen whole. De-duplication across neighbouring tiles then
follows two rules:

1. **ownership**: a cell belongs to the tile whose (half-open) box holds its centroid; other
   tiles drop it, and masks touching a window edge that is not a slide edge are dropped as
   partial views;
2. **cross-tile NMS** (:func:`dedup_across_tiles`): boxes found by different tiles that still
   overlap above an IoU are merged, keeping the higher score, for cells whose centroid moved
   across a border between the two views.

Segmenters: SAM everything mode (:class:`SamSegmenter`), whose masks include red cells, debris
and nuclei, filtered by :class:`NucleatedFilter`; box-prompted SAM (:class:`BoxPromptSegmenter`,
LiteMedSAM's mode: one box per classical nucleated-cell proposal, in small encode windows); or
the classical baseline (:class:`BaselineSegmenter`, :func:`ml.baselines.cells.segment_cells`),
which only finds nucleated cells by design.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol, cast

import cv2
import numpy as np
import torch
from scipy import ndimage

from ml.baselines.cells import BCCD_MPP, cell_prompt_boxes, segment_cells
from ml.cards import ModelCard
from ml.count import UNCLASSIFIED
from ml.geometry import Frame, Tile, mask_to_polygons, polygon_to_json
from ml.metrics import box_iou_matrix
from ml.models.sam_boxes import BoxPromptSam
from ml.models.sam_everything import SamEverything, SamMasks
from ml.nms import box_nms, dedup_boxes_bucketed, suppress_contained
from ml.stages.common import StageSource
from ml.stages.reader import Window


@dataclass
class Cell:
    """One segmented cell. Geometry in level-0 slide px; boxes XYXY.

    ``polygon``: ``(N, 2)`` exterior ring; ``area``: mask pixels (level-0 px^2); ``score``:
    segmentation confidence in ``[0, 1]`` (SAM's predicted IoU; 1 for the baseline);
    ``tile``: ``(col, row)`` of the owning tile. ``label``, ``probabilities`` (in the
    classifier's class order) and ``review`` are filled by the classification stage.
    """

    polygon: np.ndarray
    box: np.ndarray
    centroid: np.ndarray
    area: float
    score: float
    tile: tuple[int, int]
    label: str = UNCLASSIFIED
    probabilities: np.ndarray | None = None
    review: bool = False

    def to_dict(self, *, exact: bool = False) -> dict[str, Any]:
        """JSON-ready; coordinates rounded to 0.1 px and scores to 1e-4 unless ``exact``.

        ``exact`` keeps every float as is (JSON round-trips them bit for bit), for handing cells
        between processes: cross-tile de-duplication and the reading order compare scores and
        centroids, so a rounded hand-over could change the result.
        """
        if exact:
            ring = self.polygon.tolist()
            if len(ring) and ring[0] != ring[-1]:
                ring.append(ring[0])
            return {
                "polygon": ring,
                "box": [float(v) for v in self.box],
                "centroid": [float(v) for v in self.centroid],
                "area_px": float(self.area),
                "segmentation_score": float(self.score),
                "tile": list(self.tile),
                "class": self.label,
                "probabilities": None
                if self.probabilities is None
                else [float(p) for p in self.probabilities],
                "review": self.review,
            }
        return {
            "polygon": polygon_to_json([self.polygon])[0],
            "box": [round(float(v), 1) for v in self.box],
            "centroid": [round(float(v), 1) for v in self.centroid],
            "area_px": round(self.area, 1),
            "segmentation_score": round(self.score, 4),
            "tile": list(self.tile),
            "class": self.label,
            "probabilities": None
            if self.probabilities is None
            else [round(float(p), 4) for p in self.probabilities],
            "review": self.review,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cell:
        """The cell :meth:`to_dict` wrote (``exact``: the same cell, bit for bit).

        The ring is open again (``to_dict`` closes it), so ``from_dict(c.to_dict())`` has the
        polygon's original vertex count.
        """
        ring: np.ndarray = np.asarray(data["polygon"], dtype=np.float64).reshape(-1, 2)
        if len(ring) > 1 and np.array_equal(ring[0], ring[-1]):
            ring = ring[:-1]
        probabilities = data.get("probabilities")
        return cls(
            polygon=ring,
            box=np.asarray(data["box"], dtype=np.float64),
            centroid=np.asarray(data["centroid"], dtype=np.float64),
            area=float(data["area_px"]),
            score=float(data["segmentation_score"]),
            tile=(int(data["tile"][0]), int(data["tile"][1])),
            label=data.get("class", UNCLASSIFIED),
            probabilities=None
            if probabilities is None
            else np.asarray(probabilities, dtype=np.float32),
            review=bool(data.get("review", False)),
        )


@dataclass
class MaskCrop:
    """A mask in window px: integer XYXY ``box`` and the bool crop covering it exactly."""

    box: np.ndarray
    mask: np.ndarray
    score: float


class Segmenter(Protocol):
    """Finds cell masks in a batch of RGB uint8 window images."""

    @property
    def source(self) -> StageSource: ...

    def segment(self, images: Sequence[np.ndarray], mpp: float | None) -> list[list[MaskCrop]]: ...


@dataclass(frozen=True)
class NucleatedFilter:
    """Keeps SAM masks that look like one nucleated cell; red cells, debris and parts go.

    - area within ``[min_area_um2, max_area_um2]`` (or ``[min_area_px, max_area_fraction`` of
      the window``]`` when the slide has no pixel size);
    - at least ``min_nucleus_fraction`` of the mask is nuclear stain: Wright-Giemsa nuclei are
      violet (blue exceeds red by ``nucleus_blue_margin``) and dark (green below
      ``nucleus_darkness`` x the window's bright background), which red cells never are;
    - not ``containment`` inside a larger kept mask (a nucleus inside its own cell).
    """

    min_area_um2: float = 20.0
    max_area_um2: float = 2000.0
    min_area_px: int = 64
    max_area_fraction: float = 0.25
    min_nucleus_fraction: float = 0.05
    nucleus_blue_margin: int = 15
    nucleus_darkness: float = 0.75
    containment: float = 0.85

    def keep(self, image: np.ndarray, found: SamMasks, mpp: float | None) -> list[int]:
        """Indices into ``found`` that pass, for a window ``image`` (RGB uint8)."""
        lo, hi = self._area_limits(image.shape[:2], mpp)
        nuclear = self.nuclear_pixels(image)
        candidates = []
        boxes_px = cast(list[list[int]], found.boxes.astype(np.int64).tolist())
        for k, (box, mask) in enumerate(zip(boxes_px, found.masks, strict=True)):
            area = int(mask.sum())
            if not lo <= area <= hi:
                continue
            x0, y0, x1, y1 = box
            inside = nuclear[y0:y1, x0:x1][mask]
            if inside.mean() >= self.min_nucleus_fraction:
                candidates.append(k)
        boxes = found.boxes[candidates].astype(np.int64)
        kept = suppress_contained(boxes, [found.masks[k] for k in candidates], self.containment)
        return sorted(candidates[i] for i in kept)

    def nuclear_pixels(self, image: np.ndarray) -> np.ndarray:
        """``(H, W)`` bool: violet and dark pixels of an RGB uint8 image."""
        rgb = image.astype(np.int16)
        background = np.percentile(rgb[..., 1], 95)
        violet = rgb[..., 2] - rgb[..., 0] >= self.nucleus_blue_margin
        dark = rgb[..., 1] < self.nucleus_darkness * background
        return violet & dark

    def _area_limits(self, window_hw: tuple[int, int], mpp: float | None) -> tuple[float, float]:
        if mpp:
            return self.min_area_um2 / mpp**2, self.max_area_um2 / mpp**2
        return float(self.min_area_px), self.max_area_fraction * window_hw[0] * window_hw[1]


def nucleus_prompts(
    image: np.ndarray, cell_filter: NucleatedFilter, mpp: float | None, min_area_um2: float = 6.0
) -> np.ndarray:
    """One SAM prompt per nucleus-stained blob: ``(N, 2)`` (x, y) centroids in image px.

    Nuclear pixels (:meth:`NucleatedFilter.nuclear_pixels`) are closed over ~1 µm so the lobes
    of one nucleus form one blob; blobs under ``min_area_um2`` (platelets, specks) give no
    prompt. Red cells never get one, so SAM is asked only about nucleated cells.
    """
    um = 1.0 / mpp if mpp else 10.0  # px per µm; 0.1 µm/px when unknown
    nuclear = cell_filter.nuclear_pixels(image).astype(np.uint8)
    radius = max(1, round(0.5 * um))
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    blobs = cv2.morphologyEx(nuclear, cv2.MORPH_CLOSE, disk)
    _, _, stats, centroids = cv2.connectedComponentsWithStats(blobs, connectivity=8)
    big = stats[1:, cv2.CC_STAT_AREA] >= min_area_um2 * um * um
    return centroids[1:][big] + 0.5  # OpenCV centroids are pixel indices; ours are continuous


class SamSegmenter:
    """SAM + :class:`NucleatedFilter`; one embedding per window.

    ``prompts="grid"`` is the published everything mode (a regular grid of points);
    ``"nuclei"`` prompts once per nucleus-stained blob (:func:`nucleus_prompts`), typically
    tens of prompts per tile instead of ~1,000, which makes the mask decoder's cost (the
    dominant one: it attends over the whole image embedding once per prompt) 20-100x smaller.
    """

    def __init__(
        self,
        generator: SamEverything,
        source: StageSource,
        cell_filter: NucleatedFilter,
        prompts: str = "grid",
    ) -> None:
        if prompts not in ("grid", "nuclei"):
            raise ValueError(f"prompts must be 'grid' or 'nuclei', got {prompts!r}")
        self.generator = generator
        self._source = source
        self.cell_filter = cell_filter
        self.prompts = prompts

    @property
    def source(self) -> StageSource:
        return self._source

    def segment(self, images: Sequence[np.ndarray], mpp: float | None) -> list[list[MaskCrop]]:
        points = None
        if self.prompts == "nuclei":
            points = [nucleus_prompts(image, self.cell_filter, mpp) for image in images]
        out = []
        for image, found in zip(images, self.generator.generate(images, points), strict=True):
            keep = self.cell_filter.keep(image, found, mpp)
            out.append(
                [
                    MaskCrop(
                        found.boxes[k].astype(np.int64), found.masks[k], float(found.scores[k])
                    )
                    for k in keep
                ]
            )
        return out


@dataclass(frozen=True)
class BoxPromptSettings:
    """Knobs of :class:`BoxPromptSegmenter`; lengths in µm (px via the window's ``mpp``).

    - ``growth``: each proposal box grows by this fraction of its size (half on each side):
      0.2 gave box Recall75 0.92 with ground-truth boxes as prompts on BCCD, 0.1 only 0.54
      (LiteMedSAM's masks hug the box it is given, a little inside it);
    - ``encode_window_um``: side of one encode window. 48 µm is 640 px on BCCD-like photos
      (2.5x down to the 256 px LiteMedSAM input), where a white cell stays well resolved; one
      1600 px encode (6.25x down) loses most cells' outlines;
    - ``default_mpp``: µm/px assumed when the window's is unknown (the baseline's);
    - ``nms_iou``: masks of one window overlapping more than this (box IoU) are one cell;
    - ``min_prompt_iou``: a mask whose box overlaps its prompt box less than this strayed off
      the proposed cell (onto a neighbour, or into the background) and is dropped;
    - ``multimask``: keep the best-predicted of SAM's three masks per box instead of its single
      mask (:meth:`ml.models.sam_boxes.BoxPromptSam.masks`). Off: with ground-truth prompts it
      lifted Recall75 from 0.94 to 0.96 on 54 BCCD white cells, but on classical proposals
      (16 photos, 18 cells) it was 0.50 vs 0.44 at ``growth`` 0.2 and 0.50 vs 0.61 at 0.3, all
      below the classical boxes themselves (0.78): the proposals, about 10% smaller than the
      cells, limit SAM more than the mask choice does.
    """

    growth: float = 0.2
    encode_window_um: float = 48.0
    default_mpp: float = BCCD_MPP
    nms_iou: float = 0.5
    min_prompt_iou: float = 0.3
    multimask: bool = False


class BoxPromptSegmenter:
    """Box-prompted SAM on nucleated-cell proposals (LiteMedSAM answers boxes, not points).

    Per window: the classical segmenter proposes one box per nucleated cell
    (:func:`ml.baselines.cells.cell_prompt_boxes`); the proposals are grouped into encode
    windows of ``encode_window_um`` (:func:`plan_encode_windows`), only where there are any;
    each encode window is embedded once and all its boxes are decoded as one batch; then box
    NMS within the window. Red cells never get a proposal, so they are never segmented.
    """

    def __init__(
        self, sam: BoxPromptSam, source: StageSource, settings: BoxPromptSettings | None = None
    ) -> None:
        self.sam = sam
        self._source = source
        self.settings = settings or BoxPromptSettings()

    @classmethod
    def from_card(
        cls, card: ModelCard, device: torch.device, settings: BoxPromptSettings | None = None
    ) -> BoxPromptSegmenter:
        """Load the card's SAM (sha256 checked) with the pre-processing its architecture needs."""
        settings = settings or BoxPromptSettings()
        sam = BoxPromptSam.from_card(card, device)
        summary = {**card.summary(), "prompts": "boxes", "settings": asdict(settings)}
        return cls(sam, StageSource("model", card.name, summary), settings)

    @property
    def source(self) -> StageSource:
        return self._source

    def segment(self, images: Sequence[np.ndarray], mpp: float | None) -> list[list[MaskCrop]]:
        return [self.segment_one(image, mpp) for image in images]

    def segment_one(self, image: np.ndarray, mpp: float | None) -> list[MaskCrop]:
        """Masks of the nucleated cells in one RGB uint8 window, in its px."""
        s = self.settings
        mpp = mpp or s.default_mpp
        prompts, _ = cell_prompt_boxes(image, mpp=mpp, growth=s.growth)
        return self.segment_boxes(image, prompts, mpp)

    def segment_boxes(self, image: np.ndarray, prompts: np.ndarray, mpp: float) -> list[MaskCrop]:
        """Masks for given ``(N, 4)`` XYXY prompt boxes (window px), after NMS."""
        s = self.settings
        size = max(round(s.encode_window_um / mpp), 1)
        crops: list[MaskCrop] = []
        for (x0, y0, x1, y1), members in plan_encode_windows(image.shape[:2], prompts, size):
            embedded = self.sam.embed([np.ascontiguousarray(image[y0:y1, x0:x1])])[0]
            local = prompts[members] - [x0, y0, x0, y0]
            found = self.sam.masks(embedded, local, multimask=s.multimask)
            on_prompt = np.diag(box_iou_matrix(found.boxes.astype(np.float64), local))
            for k, mask in enumerate(found.masks):
                if mask is None or on_prompt[k] < s.min_prompt_iou:
                    continue
                box = found.boxes[k] + [x0, y0, x0, y0]
                crops.append(MaskCrop(box.astype(np.int64), mask, float(found.scores[k])))
        if not crops:
            return []
        boxes = np.array([c.box for c in crops], dtype=np.float64)
        keep = box_nms(boxes, np.array([c.score for c in crops]), s.nms_iou)
        return [crops[k] for k in sorted(keep)]


def plan_encode_windows(
    image_hw: tuple[int, int], boxes: np.ndarray, size: int
) -> list[tuple[tuple[int, int, int, int], np.ndarray]]:
    """Group prompt boxes into square encode windows of side ``size`` (clipped to the image).

    Greedy, in reading order: a box goes to the first window holding it whole; otherwise a new
    window is centred on it (widened to hold a box bigger than ``size``). Windows exist only
    where there are boxes. Returns ``[((x0, y0, x1, y1), member indices), ...]`` in image px.
    """
    h, w = image_hw
    windows: list[list[int]] = []
    members: list[list[int]] = []
    order = np.lexsort((boxes[:, 0], boxes[:, 1])) if len(boxes) else []
    for k in order:
        bx0, by0, bx1, by1 = boxes[k]
        for i, (x0, y0, x1, y1) in enumerate(windows):
            if x0 <= bx0 and y0 <= by0 and bx1 <= x1 and by1 <= y1:
                members[i].append(int(k))
                break
        else:
            windows.append(_window_around(boxes[k], size, w, h))
            members.append([int(k)])
    return [
        ((x0, y0, x1, y1), np.array(m, dtype=np.int64))
        for (x0, y0, x1, y1), m in zip(windows, members, strict=True)
    ]


def _window_around(box: np.ndarray, size: int, w: int, h: int) -> list[int]:
    """The ``size`` square (per axis at least the box's extent) centred on ``box``, shifted
    inside the ``w x h`` image."""
    out = []
    for lo, hi, limit in ((box[0], box[2], w), (box[1], box[3], h)):
        side = min(max(size, int(np.ceil(hi - lo)) + 2), limit)
        start = int(round((lo + hi) / 2 - side / 2))
        start = min(max(start, 0), limit - side)
        out.append((start, start + side))
    (x0, x1), (y0, y1) = out
    return [x0, y0, x1, y1]


class BaselineSegmenter:
    """The classical nucleated-cell segmenter (:func:`ml.baselines.cells.segment_cells`)."""

    @property
    def source(self) -> StageSource:
        return StageSource.baseline(
            "classical-nucleated-cells", method="stain separation, threshold, watershed"
        )

    def segment(self, images: Sequence[np.ndarray], mpp: float | None) -> list[list[MaskCrop]]:
        return [label_image_to_crops(segment_cells(image, mpp=mpp)) for image in images]


def label_image_to_crops(labels: np.ndarray) -> list[MaskCrop]:
    """``(H, W)`` int label image (0 background) -> one :class:`MaskCrop` per label."""
    crops = []
    for index, slices in enumerate(ndimage.find_objects(labels), start=1):
        if slices is None:
            continue
        rows, cols = slices
        box = np.array([cols.start, rows.start, cols.stop, rows.stop], dtype=np.int64)
        crops.append(MaskCrop(box, labels[slices] == index, 1.0))
    return crops


def cells_in_window(
    window: Window, tile: Tile, crops: Sequence[MaskCrop], slide_wh: tuple[int, int]
) -> list[tuple[Cell, MaskCrop]]:
    """Turn one window's masks into the cells ``tile`` owns, each with its window-px crop.

    Drops masks touching a window edge that is not a slide edge (partial views) and masks
    whose centroid lies outside ``tile`` (another tile owns them).
    """
    out = []
    for crop in crops:
        if _touches_inner_edge(crop.box, window, slide_wh):
            continue
        frame = Frame(ox=window.x + crop.box[0], oy=window.y + crop.box[1])
        centroid = _centroid(crop.mask, frame)
        if not tile.contains(centroid)[0]:
            continue
        polygons = mask_to_polygons(crop.mask, frame, simplify_px=0.5)
        if not polygons:
            continue
        exterior = max(
            (p[0] for p in polygons), key=lambda ring: cv2.contourArea(ring.astype(np.float32))
        )
        box = frame.box_to_parent([0, 0, crop.box[2] - crop.box[0], crop.box[3] - crop.box[1]])
        cell = Cell(
            exterior, box, centroid, float(crop.mask.sum()), crop.score, (tile.col, tile.row)
        )
        out.append((cell, crop))
    return out


def _touches_inner_edge(box: np.ndarray, window: Window, slide_wh: tuple[int, int]) -> bool:
    left = box[0] <= 0 and window.x > 0
    top = box[1] <= 0 and window.y > 0
    right = box[2] >= window.w and window.x + window.w < slide_wh[0]
    bottom = box[3] >= window.h and window.y + window.h < slide_wh[1]
    return bool(left or top or right or bottom)


def _centroid(mask: np.ndarray, frame: Frame) -> np.ndarray:
    """Centroid of a mask's pixel centres, in ``frame``'s parent coordinates."""
    rows, cols = np.nonzero(mask)
    return frame.to_parent(np.array([cols.mean() + 0.5, rows.mean() + 0.5]))


def dedup_across_tiles(cells: Sequence[Cell], iou_threshold: float, tile_size: int) -> list[Cell]:
    """Remove cells found by two tiles (box IoU above the threshold), keeping the higher score.

    Cells of one tile never suppress each other: within a tile the segmenter's own NMS has
    already decided. Returns the kept cells in reading order (by tile row, col, then y, x).
    """
    if not cells:
        return []
    boxes = np.array([c.box for c in cells])
    scores = np.array([c.score for c in cells])
    groups = np.array([c.tile[1] * 1_000_000 + c.tile[0] for c in cells])
    keep = dedup_boxes_bucketed(
        boxes, scores, iou_threshold, bucket_size=tile_size / 4, groups=groups
    )
    kept = [cells[i] for i in keep]
    return sorted(kept, key=lambda c: (c.tile[1], c.tile[0], c.centroid[1], c.centroid[0]))


def filter_summary(cell_filter: NucleatedFilter) -> dict[str, Any]:
    """The filter's parameters, for the stage's provenance record."""
    return asdict(cell_filter)

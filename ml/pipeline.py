"""The four-stage analysis of one slide: ROI -> TOI -> cells -> classes -> DCC with alerts.

:func:`analyse` is the library's entry point (the CLI and, later, the app's background jobs
call it). Each stage uses the model whose card is in ``models_dir`` or, when there is none,
its classical baseline; the result records which, and the time each stage took.

Memory stays bounded whatever the slide's size: the slide is never read whole; the thumbnail
comes from a low pyramid level; tiles are read at level 0 one window at a time by a small
read-ahead pool (:mod:`ml.stages.reader`); crops are classified in fixed-size batches; only the
cell records (polygons, a few numbers) accumulate.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from ml.baselines.roi import glass_od
from ml.baselines.toi import TileQuality
from ml.cards import ModelCard, ModelCardError, discover_cards, load_model
from ml.classes import DEFAULT_CLASSES, CellClass, class_by_key, classifier_labels
from ml.count import (
    Alert,
    Dcc,
    coverage_alert,
    differential_count,
    misclassification_rates,
    rescreening_alert,
)
from ml.device import pick_device
from ml.geometry import Frame, Tile
from ml.interchange import qupath
from ml.interchange.qupath import PathClass
from ml.models.sam_everything import SamEverything
from ml.slide import SlideReader, open_slide
from ml.stages.cells import (
    BaselineSegmenter,
    BoxPromptSegmenter,
    BoxPromptSettings,
    Cell,
    NucleatedFilter,
    SamSegmenter,
    Segmenter,
    cells_in_window,
    dedup_across_tiles,
    filter_summary,
)
from ml.stages.classify import ClassifyStage
from ml.stages.common import StageSource
from ml.stages.reader import Window, clipped_window, stream_window_groups
from ml.stages.roi import RoiResult, RoiStage
from ml.stages.toi import TileDecision, ToiStage, candidate_tiles

SCHEMA_VERSION = 1

#: ``progress(stage, done, total)``; stages are "thumbnail", "roi", "toi", "cells".
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class PipelineConfig:
    """Every knob of a run. Sizes in level-0 px unless named otherwise.

    ``tile_batch`` / ``crop_batch`` / ``reader_workers`` / ``sam_points_per_batch`` of ``None``
    pick per device (bigger on a GPU; SAM's decoder holds ``points x 4096 x 2048`` MLP
    activations per batch, so the CPU default stays small to bound memory).
    ``sam_prompts`` is ``"grid"`` (everything mode, as published) or ``"nuclei"`` (one prompt per
    nucleus-stained blob; see :class:`ml.stages.cells.SamSegmenter`). A ``lite_medsam`` card runs
    :class:`ml.stages.cells.BoxPromptSegmenter` with ``box_prompts`` only when
    ``lite_medsam_cells`` is set: on BCCD it scored below the classical baseline (box Recall75
    0.767 vs 0.863, ``python -m bench.models``), so by default its card serves the click assist
    and the cells stage runs the baseline. ``max_tiles`` caps how many TOIs (the best-scoring) go to cell segmentation, for
    previews and benchmarks; the result says so when it applied.
    """

    thumbnail_factor: float = 100.0
    roi_threshold: float = 0.5
    tile_size: int = 1600
    min_roi_fraction: float = 0.5
    toi_threshold: float = 0.5
    cell_margin_um: float = 20.0
    fallback_mpp: float = 0.1
    box_offset: float = 0.15
    review_threshold: float = 0.60
    cross_tile_iou: float = 0.5
    sam_points_per_side: int = 32
    sam_points_per_batch: int | None = None
    sam_pred_iou_thresh: float = 0.88
    sam_stability_thresh: float = 0.95
    sam_box_nms_thresh: float = 0.7
    sam_prompts: str = "grid"
    cell_filter: NucleatedFilter = NucleatedFilter()
    box_prompts: BoxPromptSettings = BoxPromptSettings()
    lite_medsam_cells: bool = False
    tile_batch: int | None = None
    crop_batch: int | None = None
    reader_workers: int | None = None
    prefetch: int = 4
    max_tiles: int | None = None
    classes: tuple[CellClass, ...] = DEFAULT_CLASSES

    def for_device(self, device: torch.device) -> PipelineConfig:
        """Fill the per-device ``None`` fields."""
        gpu = device.type == "cuda"
        return replace(
            self,
            tile_batch=self.tile_batch or (8 if gpu else 1),
            crop_batch=self.crop_batch or (256 if gpu else 32),
            reader_workers=self.reader_workers or (6 if gpu else 2),
            sam_points_per_batch=self.sam_points_per_batch or (256 if gpu else 16),
        )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["classes"] = [c.key for c in self.classes]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PipelineConfig:
        """The config :meth:`to_dict` wrote, or any subset of its keys over the defaults.

        Raises :class:`ConfigError` naming the first unknown key, mistyped or out-of-range
        value (``cell_filter.<key>`` / ``box_prompts.<key>`` for the nested settings).
        """
        if not isinstance(data, dict):
            raise ConfigError("config", "must be an object")
        names = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key not in names:
                raise ConfigError(key, "is not a pipeline setting")
            if key == "cell_filter":
                values[key] = _nested_from_dict(NucleatedFilter, key, value)
            elif key == "box_prompts":
                values[key] = _nested_from_dict(BoxPromptSettings, key, value)
            elif key == "classes":
                values[key] = _classes_from_keys(value)
            else:
                values[key] = _checked(key, value, getattr(cls(), key))
        return cls(**values)


class ConfigError(ValueError):
    """A pipeline setting that is unknown, of the wrong type or out of range."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.message = f"{field} {reason}"
        self.data = {"field": field}


#: Value limits of the numeric settings, inclusive; settings not named here only need a type.
_LIMITS: dict[str, tuple[float, float]] = {
    "thumbnail_factor": (1.0, 10_000.0),
    "roi_threshold": (0.0, 1.0),
    "tile_size": (64, 100_000),
    "min_roi_fraction": (0.0, 1.0),
    "toi_threshold": (0.0, 1.0),
    "cell_margin_um": (0.0, 1_000.0),
    "fallback_mpp": (1e-3, 100.0),
    "box_offset": (0.0, 5.0),
    "review_threshold": (0.0, 1.0),
    "cross_tile_iou": (0.0, 1.0),
    "sam_points_per_side": (1, 256),
    "sam_points_per_batch": (1, 65_536),
    "sam_stability_thresh": (0.0, 1.0),
    "sam_box_nms_thresh": (0.0, 1.0),
    "tile_batch": (1, 1_024),
    "crop_batch": (1, 65_536),
    "reader_workers": (1, 64),
    "prefetch": (1, 256),
    "max_tiles": (1, 10_000_000),
}
_CHOICES: dict[str, tuple[str, ...]] = {"sam_prompts": ("grid", "nuclei")}
#: Settings whose default is None but whose value is an int.
_OPTIONAL_INTS = {"sam_points_per_batch", "tile_batch", "crop_batch", "reader_workers", "max_tiles"}


def _checked(key: str, value: Any, default: Any) -> Any:
    if value is None and (default is None or key in _OPTIONAL_INTS):
        return None
    if key in _CHOICES:
        if value not in _CHOICES[key]:
            raise ConfigError(key, f"must be one of {list(_CHOICES[key])}, not {value!r}")
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(key, f"must be true or false, not {value!r}")
        return value
    want_int = isinstance(default, int) or key in _OPTIONAL_INTS
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(key, f"must be a number, not {value!r}")
    if want_int and (isinstance(value, float) and not value.is_integer()):
        raise ConfigError(key, f"must be a whole number, not {value!r}")
    value = int(value) if want_int else float(value)
    if not np.isfinite(value):
        raise ConfigError(key, "must be finite")
    lo, hi = _LIMITS.get(key, (-np.inf, np.inf))
    if not lo <= value <= hi:
        raise ConfigError(key, f"must be between {lo:g} and {hi:g}, not {value:g}")
    return value


_Nested = TypeVar("_Nested", NucleatedFilter, BoxPromptSettings)
#: A caller's key for a group of tiles (:func:`stream_cells`).
K = TypeVar("K")


def _nested_from_dict(kind: type[_Nested], name: str, value: Any) -> _Nested:
    """A nested settings dataclass (``cell_filter``, ``box_prompts``) from its dict; every
    field is a number >= 0 or a switch (true/false), and ``ConfigError`` names
    ``<name>.<key>``."""
    if isinstance(value, kind):
        return value
    if not isinstance(value, dict):
        raise ConfigError(name, "must be an object")
    defaults = kind()
    out: dict[str, Any] = {}
    for key, item in value.items():
        if not hasattr(defaults, key):
            raise ConfigError(f"{name}.{key}", f"is not a {name} setting")
        default = getattr(defaults, key)
        if isinstance(default, bool):
            if not isinstance(item, bool):
                raise ConfigError(f"{name}.{key}", f"must be true or false, not {item!r}")
            out[key] = item
            continue
        if isinstance(item, bool) or not isinstance(item, int | float) or item < 0:
            raise ConfigError(f"{name}.{key}", f"must be a number >= 0, not {item!r}")
        out[key] = int(item) if isinstance(default, int) else float(item)
    return kind(**out)


def _classes_from_keys(value: Any) -> tuple[CellClass, ...]:
    known = class_by_key(DEFAULT_CLASSES)
    if not isinstance(value, list | tuple) or not value:
        raise ConfigError("classes", "must be a non-empty list of class keys")
    unknown = [k for k in value if not isinstance(k, str) or k not in known]
    if unknown:
        raise ConfigError("classes", f"has unknown class keys {unknown}")
    return tuple(known[k] for k in value)


@dataclass
class Stages:
    """The four stages of a run, each a model or a baseline."""

    roi: RoiStage
    toi: ToiStage
    cells: Segmenter
    classify: ClassifyStage
    cards: dict[str, ModelCard] = field(default_factory=dict)

    def sources(self) -> dict[str, StageSource]:
        return {
            "roi": self.roi.source,
            "toi": self.toi.source,
            "cells": self.cells.source,
            "classification": self.classify.source,
        }


@dataclass
class AnalysisResult:
    """Everything a run found; :meth:`to_dict` is the JSON the CLI writes."""

    slide: dict[str, Any]
    device: str
    config: PipelineConfig
    stages: dict[str, StageSource]
    timings: dict[str, float]
    roi: RoiResult
    tiles: list[TileDecision]
    cells: list[Cell]
    dcc: Dcc
    alerts: list[Alert]
    classifier_classes: tuple[str, ...] | None
    notes: list[str]
    segmented_tiles: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "slide": self.slide,
            "device": self.device,
            "config": self.config.to_dict(),
            "stages": {k: v.to_dict() for k, v in self.stages.items()},
            "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
            "throughput": self.throughput(),
            "roi": self.roi.to_dict(),
            "tiles": [d.to_dict() for d in self.tiles],
            "classes": [c.key for c in self.config.classes],
            "classifier_classes": None
            if self.classifier_classes is None
            else list(self.classifier_classes),
            "cells": [c.to_dict() for c in self.cells],
            "count": self.dcc.to_dict(),
            "review_count": sum(c.review for c in self.cells),
            "alerts": [a.to_dict() for a in self.alerts],
            "notes": self.notes,
        }

    def throughput(self) -> dict[str, float | int | None]:
        """Tiles and cells per second of the TOI stage and of segmentation + classification."""
        seconds = self.timings.get("cells", 0.0)
        return {
            "toi_tiles_per_s": _rate(len(self.tiles), self.timings.get("toi", 0.0)),
            "cell_tiles_per_s": _rate(self.segmented_tiles, seconds),
            "cells_per_s": _rate(len(self.cells), seconds),
            "tois": sum(d.keep for d in self.tiles),
            "segmented_tiles": self.segmented_tiles,
        }

    def to_geojson(self) -> dict[str, Any]:
        """The cells as a QuPath-compatible GeoJSON FeatureCollection (level-0 px).

        Each cell is a ``detection`` with a closed Polygon ring; classified cells carry
        ``classification: {name, color: [r, g, b]}`` and ``class_key`` from the project's class
        set (unclassified cells carry none, as QuPath writes them), and ``measurements`` with the
        scores. The layout is :mod:`ml.interchange.qupath`'s, which the app's export shares.
        """
        by_key = class_by_key(self.config.classes)
        return qupath.feature_collection(_feature(c, by_key) for c in self.cells)


def _rate(n: int, seconds: float) -> float | None:
    return round(n / seconds, 3) if seconds > 0 else None


def _feature(cell: Cell, by_key: dict[str, CellClass]) -> dict[str, Any]:
    cell_class = by_key.get(cell.label)
    path_class = (
        None
        if cell_class is None
        else PathClass(cell_class.key, cell_class.name, cell_class.colour)
    )
    measurements = {"segmentation_score": round(cell.score, 4), "area_px": round(cell.area, 1)}
    if cell.probabilities is not None:
        measurements["top_probability"] = round(float(np.max(cell.probabilities)), 4)
    ring = cell.to_dict()["polygon"]
    return qupath.feature(
        {"type": "Polygon", "coordinates": [ring]},
        object_type=qupath.DETECTION,
        path_class=path_class,
        feature_id=str(uuid.uuid4()),
        measurements=measurements,
    )


def build_stages(
    cards: dict[str, ModelCard], device: torch.device, config: PipelineConfig
) -> Stages:
    """Build each stage from its card, or its baseline when the card is absent."""
    _check_classifier_classes(cards.get("cell_classification"), config.classes)
    return Stages(
        roi=RoiStage.from_card(cards.get("roi"), device, threshold=config.roi_threshold),
        toi=ToiStage.from_card(
            cards.get("toi"),
            device,
            threshold=config.toi_threshold,
            batch_size=config.crop_batch or 32,
            workers=config.reader_workers or 2,
        ),
        cells=_segmenter(cards.get("cell_segmentation"), device, config),
        classify=ClassifyStage.from_card(
            cards.get("cell_classification"),
            device,
            box_offset=config.box_offset,
            batch_size=config.crop_batch or 32,
            review_threshold=config.review_threshold,
        ),
        cards=cards,
    )


def _check_classifier_classes(card: ModelCard | None, classes: Sequence[CellClass]) -> None:
    if card is None:
        return
    unknown = sorted(set(card.classes) - set(classifier_labels(classes)))
    if unknown:
        raise ModelCardError(card.path, "classes", f"not in the project's class set: {unknown}")


def _segmenter(card: ModelCard | None, device: torch.device, config: PipelineConfig) -> Segmenter:
    if card is None:
        return BaselineSegmenter()
    if card.architecture == "lite_medsam":  # answers boxes only: no everything mode
        if not config.lite_medsam_cells:
            return BaselineSegmenter()  # the better of the two on BCCD (PipelineConfig)
        return BoxPromptSegmenter.from_card(card, device, config.box_prompts)
    model = load_model(card, device)
    encoder: Any = model.image_encoder  # a SAM card's model is a segment_anything Sam
    img_size = int(encoder.img_size)
    if card.input_size != img_size:
        raise ModelCardError(
            card.path, "input_size", f"is {card.input_size} but the model takes {img_size}"
        )
    generator = SamEverything(
        model,
        device,
        points_per_side=config.sam_points_per_side,
        points_per_batch=config.sam_points_per_batch or 16,
        pred_iou_thresh=config.sam_pred_iou_thresh,
        stability_score_thresh=config.sam_stability_thresh,
        box_nms_thresh=config.sam_box_nms_thresh,
    )
    source = StageSource(
        "model", card.name, {**card.summary(), "filter": filter_summary(config.cell_filter)}
    )
    return SamSegmenter(generator, source, config.cell_filter, config.sam_prompts)


def analyse(
    slide_path: str | Path,
    *,
    models_dir: str | Path | None,
    device: str | torch.device | None = None,
    progress: Progress | None = None,
    config: PipelineConfig | None = None,
) -> AnalysisResult:
    """Analyse one slide end to end.

    ``models_dir`` holds the model cards (``None`` or an empty folder: every stage runs its
    baseline). ``device`` ``None`` picks CUDA when present, else CPU. Raises
    :class:`ml.cards.ModelCardError` for a bad card, :class:`ml.slide.SlideOpenError` /
    :class:`ml.slide.SlideReadError` for a bad slide.
    """
    if models_dir is not None and not Path(models_dir).is_dir():
        raise FileNotFoundError(f"models folder {models_dir} does not exist")
    torch_device = pick_device(device)
    config = (config or PipelineConfig()).for_device(torch_device)
    stages = build_stages(discover_cards(models_dir), torch_device, config)
    with open_slide(slide_path) as slide:
        return run_stages(slide, stages, config, device=torch_device, progress=progress)


def run_stages(
    slide: SlideReader,
    stages: Stages,
    config: PipelineConfig,
    *,
    device: torch.device,
    progress: Progress | None = None,
) -> AnalysisResult:
    """Run already-built stages on an open slide (the body of :func:`analyse`).

    The same three steps a chunked run takes, in one process: :func:`run_front`, then
    :func:`run_cells` on every chosen TOI, then :func:`assemble`.
    """
    started = time.perf_counter()
    front = run_front(slide, stages, config, progress=progress)
    clock: dict[str, float] = {}
    t = time.perf_counter()
    cells = run_cells(slide, stages, config, front.tois, progress=progress, clock=clock)
    clock["cells"] = time.perf_counter() - t
    result = assemble(front, cells, stages, config, device=str(device), cell_timings=clock)
    result.timings["total"] = time.perf_counter() - started
    return result


@dataclass
class FrontResult:
    """What the front stages decided: the slide's facts, the ROI, every TOI decision.

    ``tois`` are the tiles chosen for cell segmentation (``max_tiles`` applied), in the
    decisions' row-major order; ``timings`` hold "thumbnail", "roi" and "toi" in seconds.
    :meth:`to_dict` / :meth:`from_dict` round-trip it through JSON for a chunked run (the ROI
    mask as packed bits; the ROI model's probability map is not kept).
    """

    slide: dict[str, Any]
    mpp: float | None
    roi: RoiResult
    tiles: list[TileDecision]
    tois: list[Tile]
    timings: dict[str, float]
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        mask = self.roi.mask.astype(bool)
        return {
            "slide": self.slide,
            "mpp": self.mpp,
            "roi": {
                "mask_shape": list(mask.shape),
                "mask_bits": base64.b64encode(np.packbits(mask).tobytes()).decode(),
                "frame": asdict(self.roi.frame),
                "polygons": [[ring.tolist() for ring in p] for p in self.roi.polygons],
                "source": self.roi.source.to_dict(),
            },
            "tiles": [_decision_dict(d) for d in self.tiles],
            "tois": [asdict(t) for t in self.tois],
            "timings": self.timings,
            "notes": self.notes,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FrontResult:
        roi = data["roi"]
        shape = tuple(roi["mask_shape"])
        bits = np.frombuffer(base64.b64decode(roi["mask_bits"]), dtype=np.uint8)
        mask = np.unpackbits(bits)[: int(np.prod(shape))].reshape(shape).astype(bool)
        source = roi["source"]
        return cls(
            slide=data["slide"],
            mpp=data["mpp"],
            roi=RoiResult(
                mask=mask,
                frame=Frame(**roi["frame"]),
                polygons=[[np.asarray(r, dtype=np.float64) for r in p] for p in roi["polygons"]],
                source=StageSource(source["kind"], source["name"], source["detail"]),
            ),
            tiles=[_decision_from_dict(d) for d in data["tiles"]],
            tois=[Tile(**t) for t in data["tois"]],
            timings=dict(data["timings"]),
            notes=list(data["notes"]),
        )


def _decision_dict(d: TileDecision) -> dict[str, Any]:
    # Unrounded, unlike TileDecision.to_dict: the assembled result must equal a one-process run.
    return {
        "tile": asdict(d.tile),
        "roi_fraction": d.roi_fraction,
        "score": d.score,
        "keep": d.keep,
        "quality": None if d.quality is None else asdict(d.quality),
    }


def _decision_from_dict(d: dict[str, Any]) -> TileDecision:
    quality = d.get("quality")
    return TileDecision(
        tile=Tile(**d["tile"]),
        roi_fraction=d["roi_fraction"],
        score=d["score"],
        keep=d["keep"],
        quality=None if quality is None else TileQuality(**quality),
    )


def run_front(
    slide: SlideReader,
    stages: Stages,
    config: PipelineConfig,
    *,
    progress: Progress | None = None,
) -> FrontResult:
    """Thumbnail, ROI and TOI decisions; reports "thumbnail", "roi" and "toi" progress."""
    report = progress or (lambda stage, done, total: None)
    timings: dict[str, float] = {}
    notes: list[str] = []
    slide_wh = slide.dimensions
    mpp = _mpp(slide)

    report("thumbnail", 0, 1)
    t = time.perf_counter()
    thumbnail = slide.thumbnail_by_factor(config.thumbnail_factor)
    timings["thumbnail"] = time.perf_counter() - t
    report("thumbnail", 1, 1)

    report("roi", 0, 1)
    t = time.perf_counter()
    roi = stages.roi.run(thumbnail, slide_wh)
    timings["roi"] = time.perf_counter() - t
    report("roi", 1, 1)

    t = time.perf_counter()
    candidates = candidate_tiles(roi, slide_wh, config.tile_size, config.min_roi_fraction)
    report("toi", 0, len(candidates))
    decisions = stages.toi.run(
        slide,
        candidates,
        lambda d, n: report("toi", d, n),
        glass_level=glass_od(thumbnail),
        mpp=mpp,
    )
    timings["toi"] = time.perf_counter() - t
    tois = _chosen_tois(decisions, config.max_tiles, notes)
    if mpp is None:
        notes.append(
            f"the slide states no pixel size; {config.fallback_mpp} um/px was assumed for the cell margin"
        )
    return FrontResult(_slide_info(slide, mpp), mpp, roi, decisions, tois, timings, notes)


def run_cells(
    slide: SlideReader,
    stages: Stages,
    config: PipelineConfig,
    tiles: Sequence[Tile],
    *,
    progress: Progress | None = None,
    clock: dict[str, float] | None = None,
) -> list[Cell]:
    """Segment and classify the cells owned by ``tiles`` (level-0 px), streaming the windows.

    The cells are not yet de-duplicated across tiles (:func:`assemble` does that over every
    tile of the run), so runs over disjoint tile lists can be concatenated. Reports "cells"
    progress over ``tiles``; adds "segmentation", "classification" and "read_wait" seconds to
    ``clock``. One group of :func:`stream_cells`.
    """
    report = progress or (lambda stage, done, total: None)
    if not tiles:
        report("cells", 0, 0)
        report("cells", 0, 0)
        return []
    ((_, cells, seg_timings),) = stream_cells(
        slide, stages, config, [(None, tiles)], progress=lambda _, d, n: report("cells", d, n)
    )
    if clock is not None:
        for key, seconds in seg_timings.items():
            clock[key] = clock.get(key, 0.0) + seconds
    return cells


def stream_cells(
    slide: SlideReader,
    stages: Stages,
    config: PipelineConfig,
    groups: Iterable[tuple[K, Sequence[Tile]]],
    *,
    progress: Callable[[K, int, int], None] | None = None,
) -> Iterator[tuple[K, list[Cell], dict[str, float]]]:
    """:func:`run_cells` over ``(key, tiles)`` groups in turn; yields ``(key, cells, clock)`` per group.

    The slide's read-ahead runs on from one group into the next
    (:func:`ml.stages.reader.stream_window_groups`), so a worker that takes chunk after chunk
    reads as the library does over one list of tiles. ``groups`` is pulled lazily: the next
    group is asked for while the last window of the one before is being worked on, so a
    generator that claims work on demand holds at most one group ahead. A group's cells are
    classified before it is yielded. ``progress(key, done, total)`` counts its tiles; every
    group must have a tile. ``clock`` holds that group's "segmentation", "classification" and
    "read_wait" seconds.
    """
    report = progress or (lambda key, done, total: None)
    mpp = _mpp(slide)
    margin = round(config.cell_margin_um / (mpp or config.fallback_mpp))
    slide_wh = slide.dimensions
    sizes: deque[int] = deque()  # tiles per group taken, not yet yielded, in order

    def window_groups() -> Iterator[tuple[K, list[Window]]]:
        for key, tiles in groups:
            sizes.append(len(tiles))
            yield key, [clipped_window(tile, tile.box, margin, slide_wh) for tile in tiles]

    def fresh() -> dict[str, float]:
        return {"segmentation": 0.0, "classification": 0.0, "read_wait": 0.0}

    clock, done = fresh(), 0
    found: list[Cell] = []
    batch: list[tuple[Window, np.ndarray]] = []
    waited = time.perf_counter()
    for key, window, image, last in stream_window_groups(
        slide, window_groups(), workers=config.reader_workers or 2, prefetch=config.prefetch
    ):
        clock["read_wait"] += time.perf_counter() - waited
        if done == 0 and not batch:
            report(key, 0, sizes[0])
        batch.append((window, image))
        if len(batch) >= (config.tile_batch or 1) or last:
            found += _process_batch(batch, stages, mpp, slide_wh, clock)
            done += len(batch)
            batch = []
            report(key, done, sizes[0])
        if last:
            t = time.perf_counter()
            stages.classify.flush()
            clock["classification"] += time.perf_counter() - t
            sizes.popleft()
            yield key, found, clock
            clock, found, done = fresh(), [], 0
        waited = time.perf_counter()


def assemble(
    front: FrontResult,
    cells: Sequence[Cell],
    stages: Stages,
    config: PipelineConfig,
    *,
    device: str,
    cell_timings: dict[str, float] | None = None,
) -> AnalysisResult:
    """The run's result: cross-tile de-duplication of ``cells``, the count and the alerts.

    ``cells`` are :func:`run_cells`'s output over ``front.tois``, in any order of tiles;
    ``cell_timings`` ("cells", "segmentation", ...) join the front's timings.
    """
    kept = dedup_across_tiles(list(cells), config.cross_tile_iou, config.tile_size)
    dcc, alerts = _count(kept, stages, config)
    return AnalysisResult(
        slide=front.slide,
        device=device,
        config=config,
        stages=stages.sources(),
        timings={**front.timings, **(cell_timings or {})},
        roi=front.roi,
        tiles=front.tiles,
        cells=kept,
        dcc=dcc,
        alerts=alerts,
        classifier_classes=stages.classify.classes,
        notes=list(front.notes),
        segmented_tiles=len(front.tois),
    )


def _mpp(slide: SlideReader) -> float | None:
    known = [v for v in slide.mpp if v]
    return float(np.mean(known)) if known else None


def _slide_info(slide: SlideReader, mpp: float | None) -> dict[str, Any]:
    return {
        "path": str(slide.path),
        "dimensions": list(slide.dimensions),
        "mpp": mpp,
        "level_count": slide.level_count,
    }


def _chosen_tois(
    decisions: Sequence[TileDecision], max_tiles: int | None, notes: list[str]
) -> list[Tile]:
    kept = [d for d in decisions if d.keep]
    if max_tiles is not None and len(kept) > max_tiles:
        notes.append(
            f"only the {max_tiles} best-scoring of {len(kept)} TOIs were segmented (max_tiles)"
        )
        best = sorted(kept, key=lambda d: -d.score)[:max_tiles]
        kept = [d for d in decisions if any(d is b for b in best)]
    return [d.tile for d in kept]


def _process_batch(
    batch: list[tuple[Window, np.ndarray]],
    stages: Stages,
    mpp: float | None,
    slide_wh: tuple[int, int],
    clock: dict[str, float],
) -> list[Cell]:
    if not batch:
        return []
    t = time.perf_counter()
    crops = stages.cells.segment([image for _, image in batch], mpp)
    clock["segmentation"] += time.perf_counter() - t
    cells: list[Cell] = []
    for (window, image), window_crops in zip(batch, crops, strict=True):
        owned = cells_in_window(window, window.key, window_crops, slide_wh)
        t = time.perf_counter()
        stages.classify.add(image, owned)
        clock["classification"] += time.perf_counter() - t
        cells += [cell for cell, _ in owned]
    return cells


def _count(
    cells: Sequence[Cell], stages: Stages, config: PipelineConfig
) -> tuple[Dcc, list[Alert]]:
    dcc = differential_count([c.label for c in cells], config.classes)
    alerts: list[Alert] = []
    card = stages.cards.get("cell_classification")
    coverage = None if card is None else coverage_alert(card.classes, config.classes)
    if coverage is not None:
        alerts.append(coverage)
    if card is not None and card.confusion_matrix is not None:
        rates = misclassification_rates(card.confusion_matrix, card.classes)
        alert = rescreening_alert({c.label for c in cells}, rates)
        if alert is not None:
            alerts.append(alert)
    n_review = sum(c.review for c in cells)
    if n_review:
        alerts.append(
            Alert(
                kind="review_required",
                message=(
                    f"{n_review} cells have a top class probability below {config.review_threshold:.2f} "
                    "and must be reviewed before sign-off."
                ),
            )
        )
    return dcc, alerts

"""The BCCD blood-smear data set: 640x480 JPEG photos with Pascal VOC boxes per class.

Layout: ``<root>/JPEGImages/<stem>.jpg`` and ``<root>/Annotations/<stem>.xml``. Classes are
``WBC``, ``RBC`` and ``Platelets``.

VOC boxes are 1-based and inclusive (``xmax`` reaches 640 on a 640-px-wide image). They are
converted to the 0-based pixel-edge XYXY convention of :mod:`ml.metrics`:
``(xmin - 1, ymin - 1, xmax, ymax)``, in image pixels. A box with ``xmax <= xmin`` or
``ymax <= ymin`` is an annotation slip (BCCD has a few "zero-area" RBC boxes, e.g. in
BloodImage_00338); it is dropped and counted in :attr:`BccdSample.n_degenerate`.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ml.metrics import box_iou_matrix, boxes_from_label_image, detection_counts

BCCD_CLASSES: tuple[str, ...] = ("WBC", "RBC", "Platelets")


@dataclass(frozen=True)
class BccdSample:
    """One BCCD image and its boxes.

    Attributes:
        stem: file name without extension, e.g. ``BloodImage_00007``.
        image_path: the JPEG file.
        width, height: image size in pixels from the annotation.
        boxes: class name -> float64 ``(N, 4)`` XYXY pixel-edge boxes in image pixels; every
            class of :data:`BCCD_CLASSES` is present (possibly ``(0, 4)``).
        n_degenerate: boxes dropped because they had no area.
    """

    stem: str
    image_path: Path
    width: int
    height: int
    boxes: dict[str, np.ndarray] = field(default_factory=dict)
    n_degenerate: int = 0

    def image(self) -> np.ndarray:
        """The photo as RGB uint8 ``(H, W, 3)``."""
        return load_rgb(self.image_path)


def load_rgb(path: Path) -> np.ndarray:
    """Read any image Pillow understands (by content, not extension) as RGB uint8 (H, W, 3)."""
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"), dtype=np.uint8)


def load_annotation(xml_path: Path, image_dir: Path | None = None) -> BccdSample:
    """Parse one VOC annotation; the image is looked up in ``image_dir`` (default: the sibling
    ``JPEGImages`` folder) under the same stem."""
    root = ET.parse(xml_path).getroot()
    size = root.find("size")
    width = int(_text(size, "width"))
    height = int(_text(size, "height"))
    per_class: dict[str, list[tuple[float, float, float, float]]] = {c: [] for c in BCCD_CLASSES}
    n_degenerate = 0
    for obj in root.iter("object"):
        name = _text(obj, "name").strip()
        bnd = obj.find("bndbox")
        x1, y1, x2, y2 = (float(_text(bnd, k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        if x2 <= x1 or y2 <= y1:
            n_degenerate += 1
            continue
        per_class.setdefault(name, []).append((x1 - 1.0, y1 - 1.0, x2, y2))
    image_dir = image_dir or xml_path.parent.parent / "JPEGImages"
    return BccdSample(
        stem=xml_path.stem,
        image_path=image_dir / f"{xml_path.stem}.jpg",
        width=width,
        height=height,
        boxes={k: np.asarray(v, dtype=np.float64).reshape(-1, 4) for k, v in per_class.items()},
        n_degenerate=n_degenerate,
    )


def load_bccd(root: Path) -> list[BccdSample]:
    """All annotated samples under ``root``, sorted by stem."""
    xml_paths = sorted((Path(root) / "Annotations").glob("*.xml"))
    if not xml_paths:
        raise FileNotFoundError(f"no VOC annotations under {root}/Annotations")
    return [load_annotation(p) for p in xml_paths]


def _text(node: ET.Element | None, tag: str) -> str:
    child = None if node is None else node.find(tag)
    if child is None or child.text is None:
        raise ValueError(f"VOC annotation lacks <{tag}>")
    return child.text


@dataclass(frozen=True)
class WbcDetectionScores:
    """White-cell detection figures over a set of BCCD images (SPEC §2.3, issue 5 bar).

    Attributes:
        recall50, recall75: matched WBC boxes / all WBC boxes, one-to-one greedy matching at
            IoU >= 0.5 / 0.75, summed over images (``None`` with no WBC box at all).
        false_per_image: predictions not matched to a WBC box at IoU >= 0.5, per image.
        n_images, n_gt: images scored and WBC boxes in them.
        seconds_per_image: mean wall time of one segmenter call.
        red_cell_hits, platelet_hits: predictions whose best box IoU >= 0.5 is with an RBC or a
            platelet box rather than a WBC box (what the segmenter must not return).
    """

    recall50: float | None
    recall75: float | None
    false_per_image: float
    n_images: int
    n_gt: int
    seconds_per_image: float
    red_cell_hits: int
    platelet_hits: int

    def to_dict(self) -> dict[str, float | int | None]:
        """JSON-friendly dict."""
        return asdict(self)


def score_wbc_detection(
    samples: Sequence[BccdSample], segment: Callable[[np.ndarray], np.ndarray]
) -> WbcDetectionScores:
    """Run ``segment`` (RGB uint8 image -> int instance labels) on every sample and score the
    bounding box of each predicted instance against the WBC boxes."""
    return score_wbc_boxes(samples, lambda _, image: boxes_from_label_image(segment(image))[1])


def score_wbc_boxes(
    samples: Sequence[BccdSample], detect: Callable[[BccdSample, np.ndarray], np.ndarray]
) -> WbcDetectionScores:
    """Run ``detect`` (sample, its RGB uint8 image -> ``(N, 4)`` XYXY predicted cell boxes) on
    every sample and score the boxes against the WBC boxes. Only ``detect`` is timed.

    ``detect`` gets the sample so that an oracle (prompts from the ground truth) can be scored
    the same way."""
    tp50 = tp75 = false = n_gt = red_hits = platelet_hits = 0
    seconds = 0.0
    for sample in samples:
        image = sample.image()
        start = time.perf_counter()
        pred = np.asarray(detect(sample, image), dtype=np.float64).reshape(-1, 4)
        seconds += time.perf_counter() - start
        gt = sample.boxes["WBC"]
        tp, fp, _ = detection_counts(gt, pred, 0.5)
        tp50, false, n_gt = tp50 + tp, false + fp, n_gt + len(gt)
        tp75 += detection_counts(gt, pred, 0.75)[0]
        red, platelet = _non_wbc_hits(sample, pred)
        red_hits, platelet_hits = red_hits + red, platelet_hits + platelet
    n = len(samples)
    return WbcDetectionScores(
        recall50=tp50 / n_gt if n_gt else None,
        recall75=tp75 / n_gt if n_gt else None,
        false_per_image=false / n if n else 0.0,
        n_images=n,
        n_gt=n_gt,
        seconds_per_image=seconds / n if n else 0.0,
        red_cell_hits=red_hits,
        platelet_hits=platelet_hits,
    )


def _non_wbc_hits(sample: BccdSample, pred: np.ndarray) -> tuple[int, int]:
    """Predictions whose best-matching box (IoU >= 0.5) is an RBC / a platelet box."""
    if len(pred) == 0:
        return 0, 0
    best = np.stack(
        [box_iou_matrix(pred, sample.boxes[c]).max(axis=1, initial=0.0) for c in BCCD_CLASSES]
    )
    winner = best.argmax(axis=0)
    hit = best.max(axis=0) >= 0.5
    return int(np.sum(hit & (winner == 1))), int(np.sum(hit & (winner == 2)))

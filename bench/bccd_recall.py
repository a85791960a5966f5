"""White-cell detection of the classical cell segmenter on every BCCD photo.

Run from the repository root: ``python -m bench.bccd_recall``. Prints one JSON line:
recall50, recall75, false_per_image, n_images, n_gt, seconds_per_image (plus the red-cell and
platelet hits). The issue-5 bar is recall50 >= 0.95, recall75 >= 0.70, false_per_image <= 0.3.
"""

from __future__ import annotations

import json

from bench.synthetic import SHARED
from ml.baselines.cells import segment_cells
from ml.datasets.bccd import load_bccd, score_wbc_detection


def main() -> None:
    """Score :func:`segment_cells` (default parameters, ``mpp=None``) and print the figures."""
    scores = score_wbc_detection(load_bccd(SHARED / "smears" / "BCCD"), segment_cells)
    figures = {k: round(v, 4) if isinstance(v, float) else v for k, v in scores.to_dict().items()}
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

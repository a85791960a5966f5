"""More than two annotators: Fleiss' kappa over cells every pair matched, and shared tiles."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np

from ml import metrics
from ml.agreement.cells import CellMatch, match_cells
from ml.agreement.labels import TOI_LABELS, Label, TileKey
from ml.agreement.shapes import PolygonLike, to_geometries


@dataclass(frozen=True)
class MultiRater:
    """Fleiss' kappa over items every one of ``n_raters`` annotators labelled."""

    n_raters: int
    n_items: int
    fleiss_kappa: float | None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the three fields."""
        return vars(self).copy()


def match_all(
    cells: Sequence[Sequence[PolygonLike]], *, iou_threshold: float = 0.5
) -> dict[tuple[int, int], CellMatch]:
    """Pairwise :func:`match_cells` of every annotator pair ``(i, j)``, ``i < j``."""
    geoms = [to_geometries(c) for c in cells]
    return {
        (i, j): match_cells(geoms[i], geoms[j], iou_threshold=iou_threshold)
        for i, j in combinations(range(len(cells)), 2)
    }


def cell_cliques(matches: Mapping[tuple[int, int], CellMatch], sizes: Sequence[int]) -> np.ndarray:
    """Groups of one cell per annotator, every pair matched: int64 ``(G, k)`` cell indices."""
    k = len(sizes)
    if k == 0:
        return np.zeros((0, 0), np.int64)
    partner = {}
    for (i, j), match in matches.items():
        table = np.full(sizes[i], -1, np.int64)
        table[match.pairs[:, 0]] = match.pairs[:, 1]
        partner[i, j] = table
    groups = np.full((sizes[0], k), -1, np.int64)
    groups[:, 0] = np.arange(sizes[0])
    for j in range(1, k):
        groups[:, j] = partner[0, j]
    ok = (groups >= 0).all(axis=1)
    for i, j in combinations(range(1, k), 2):
        if not ok.any():
            break
        ok &= partner[i, j][np.where(ok, groups[:, i], 0)] == groups[:, j]
    return groups[ok]


def fleiss_cells(
    matches: Mapping[tuple[int, int], CellMatch],
    labels: Sequence[Sequence[Label]],
    classes: Sequence[str] = (),
) -> MultiRater:
    """Fleiss' kappa of cell classes over the cliques of the pairwise matchings (package doc);
    ``labels[r][i]`` is annotator ``r``'s class for their cell ``i``."""
    groups = cell_cliques(matches, [len(x) for x in labels])
    ratings = [[labels[r][i] for r, i in enumerate(g)] for g in groups.tolist()]
    return _fleiss(ratings, len(labels), classes)


def fleiss_tiles(tiles: Sequence[Mapping[TileKey, Label]]) -> MultiRater:
    """Fleiss' kappa of TOI labels over tiles every annotator labelled."""
    shared = set.intersection(*({k for k, v in t.items() if v} for t in tiles)) if tiles else set()
    ratings = [[t[key] for t in tiles] for key in sorted(shared)]
    return _fleiss(ratings, len(tiles), TOI_LABELS)


def _fleiss(ratings: list[list[Label]], n_raters: int, classes: Sequence[str]) -> MultiRater:
    complete = [row for row in ratings if all(row)]
    if n_raters < 2:
        return MultiRater(n_raters=n_raters, n_items=0, fleiss_kappa=None)
    labels = list(classes) + sorted(
        {x for row in complete for x in row if x is not None} - set(classes)
    )
    kappa = metrics.fleiss_kappa(complete, labels) if complete else None
    return MultiRater(n_raters=n_raters, n_items=len(complete), fleiss_kappa=kappa)

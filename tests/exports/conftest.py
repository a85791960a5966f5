"""Export test helpers: annotations on the real slide (cmu-1-small-region.svs, 2220 x 2967 px)
made through the annotation services, and a worker that runs queued jobs in-process."""

from __future__ import annotations

import math

import pytest


@pytest.fixture(autouse=True)
def export_dir(settings, tmp_path):
    settings.EXPORT_DIR = tmp_path / "exports"
    return settings.EXPORT_DIR


@pytest.fixture
def sync_worker(monkeypatch, django_capture_on_commit_callbacks):
    """Run queued django-q2 tasks in-process when the request's transaction commits."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)
    return lambda: django_capture_on_commit_callbacks(execute=True)


def circle(cx: float, cy: float, r: float = 30.0, n: int = 24) -> dict:
    ring = [
        [cx + r * math.cos(2 * math.pi * i / n), cy + r * math.sin(2 * math.pi * i / n)]
        for i in range(n)
    ]
    return {"type": "Polygon", "coordinates": [ring + [ring[0]]]}


CELLS = [
    (300, 300, "myeloblast"),
    (500, 420, "lymphocyte"),
    (800, 900, "myeloblast"),
    (400, 1300, "lymphocyte"),
    (500, 2000, "myeloblast"),
]


def annotate(slide, user, *, cells=CELLS) -> dict[str, int]:
    """ROI, two TOI decisions and cells by ``user`` on ``slide``; ``{stage: set id}``."""
    from apps.annotations import services

    sets = {}
    roi = services.get_or_create_annotator_set(slide=slide, stage="roi", user=user)
    services.create_annotation(
        aset=roi,
        user=user,
        item={
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[100, 100], [1700, 100], [1700, 2500], [100, 2500], [100, 100]]],
            }
        },
    )
    toi = services.get_or_create_annotator_set(slide=slide, stage="toi", user=user)
    for col, row, label in [(0, 0, "toi"), (0, 1, "toi"), (1, 0, "non_toi")]:
        services.create_annotation(
            aset=toi,
            user=user,
            item={
                "geometry": services.tile_geometry(slide, 1600, col, row),
                "label": label,
                "tile_col": col,
                "tile_row": row,
            },
        )
    sets.update(roi=roi.pk, toi=toi.pk, cell=annotate_cells(slide, user, cells=cells))
    return sets


def annotate_cells(slide, user, *, cells=CELLS) -> int:
    """``user``'s cell set on ``slide`` with ``cells`` ``(x, y, label)``; its id."""
    from apps.annotations import services

    aset = services.get_or_create_annotator_set(slide=slide, stage="cell", user=user)
    services.bulk_create_annotations(
        aset=aset, user=user, items=[{"geometry": circle(x, y), "label": k} for x, y, k in cells]
    )
    return aset.pk

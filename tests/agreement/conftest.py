"""Agreement fixtures: a real slide, annotators A (``member``) and B (``partner``), a reviewer.

Annotations are written through the annotation services, exactly as the API does, so every
report is computed from stored, validated, versioned rows. The slide is the real Aperio file
cmu-1-small-region.svs (2220 x 2967 px).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pytest

from tests.conftest import SLIDES_DIR

SMALL_SLIDE_FILE = SLIDES_DIR / "boxes.tiff"


@pytest.fixture(autouse=True)
def fresh_cache():
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def as_user(api):
    def _as(user):
        api.force_authenticate(user)
        return api

    return _as


def cell(cx: float, cy: float, r: float = 30.0, n: int = 24, sx: float = 1.0) -> dict[str, Any]:
    """A closed ``n``-gon of radius ``r`` (x stretched by ``sx``) around (cx, cy), level-0 px."""
    ring = [
        [cx + sx * r * math.cos(2 * math.pi * i / n), cy + r * math.sin(2 * math.pi * i / n)]
        for i in range(n)
    ]
    return {"type": "Polygon", "coordinates": [ring + [ring[0]]]}


def rect(x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def assign(slide, stage: str, annotators: Sequence[Any], admin) -> None:
    from apps.annotations import services

    for user in annotators:
        services.assign_task(slide=slide, stage=stage, annotator=user, assigned_by=admin)


def draw(slide, stage: str, user, items: list[dict[str, Any]]):
    """Store ``items`` ({geometry?, label, tile_col?, tile_row?}) in ``user``'s own set."""
    from apps.annotations import services

    aset = services.get_or_create_annotator_set(slide=slide, stage=stage, user=user)
    return services.bulk_create_annotations(aset=aset, user=user, items=items)


def submit(slide, stage: str, *users) -> None:
    from apps.annotations import services
    from apps.annotations.models import Task

    for user in users:
        task = Task.objects.get(slide=slide, stage=stage, annotator=user)
        services.submit_task(task=task, user=user)


#: Annotator A's and B's cells on the real slide: (A cell, A label, B cell, B label).
#: Two matched pairs agree, one matched pair differs in class, one cell each is one-sided.
CELLS = [
    (cell(300, 300), "myeloblast", cell(303, 301), "myeloblast"),
    (cell(500, 300), "lymphocyte", cell(500, 304, sx=1.05), "lymphocyte"),
    (cell(700, 300), "myeloblast", cell(702, 298), "promyelocyte"),
    (cell(900, 300), "basophil", None, None),
    (None, None, cell(1100, 300), "eosinophil"),
]


@pytest.fixture
def cell_study(slide, member, partner, owner):
    """The cell stage of ``slide``: A and B drew :data:`CELLS` and submitted."""
    assign(slide, "cell", [member, partner], owner)
    draw(slide, "cell", member, [{"geometry": a, "label": la} for a, la, _, _ in CELLS if a])
    draw(slide, "cell", partner, [{"geometry": b, "label": lb} for _, _, b, lb in CELLS if b])
    submit(slide, "cell", member, partner)
    return slide


def compute(slide, stage: str, user):
    """Queue (slide, stage)'s report job and run it now, as the worker would; the finished job."""
    from apps.agreement import services

    job, _ = services.request_report(slide=slide, stage=stage, user=user)
    return services.run_job(job.pk)


@pytest.fixture
def reported_cells(cell_study, owner):
    """:func:`cell_study` with its cell report computed."""
    job = compute(cell_study, "cell", owner)
    assert job.status == "done", job.error
    return cell_study

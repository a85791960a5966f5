"""What the annotation benchmarks share: a bench process's Django settings, synthetic cell
outlines and the ingested demo smear. ``bench/annotations.py`` and ``bench/viewer_fps.py`` both
import this module (and neither imports the other's internals).

Import it after putting the repository on ``sys.path``; importing it sets the settings module
and allows the development key (a benchmark serves nobody; DEBUG stays off, as it would log
every query and slow the figures down).
"""

from __future__ import annotations

import math
import os
import random
from pathlib import Path
from typing import Any

from bench.synthetic import SHARED

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bmadcc_web.settings")
os.environ.setdefault("BMADCC_ALLOW_DEV_SECRET", "true")

#: The demo smear's side (level-0 px) the benches annotate.
SLIDE_SIZE = 20_000


def cell_polygons(n: int, seed: int, slide_size: int) -> list[dict[str, Any]]:
    """``n`` star-shaped (valid, simple) cell outlines of 20-60 vertices, level-0 px.

    Cells sit on a jittered grid so they do not overlap; radii 25-60 px (a 5-12 um cell at
    0.1 um/px), boundaries wobble by up to 15 % like a traced outline. Each item is
    ``{"geometry": GeoJSON Polygon, "label": "lymphocyte"}``.
    """
    rng = random.Random(seed)
    side = math.ceil(math.sqrt(n))
    pitch = (slide_size - 400) / side
    items = []
    for i in range(n):
        cx = 200 + pitch * (i % side + 0.5) + rng.uniform(-20, 20)
        cy = 200 + pitch * (i // side + 0.5) + rng.uniform(-20, 20)
        radius, vertices = rng.uniform(25, 60), rng.randint(20, 60)
        ring = []
        for k in range(vertices):
            angle = 2 * math.pi * k / vertices
            r = radius * rng.uniform(0.85, 1.0)
            ring.append([round(cx + r * math.cos(angle), 2), round(cy + r * math.sin(angle), 2)])
        ring.append(ring[0])
        items.append(
            {"geometry": {"type": "Polygon", "coordinates": [ring]}, "label": "lymphocyte"}
        )
    return items


def demo_world(username: str, password: str, project_name: str) -> tuple[Any, Any, Any]:
    """A user, their project and the ingested 20k demo smear: ``(user, project, slide)``.

    Needs Django set up and a (throwaway) database; the smear is built once into
    ``var/test-cache`` from the shared smear photos.
    """
    from django.contrib.auth import get_user_model

    from apps.accounts.services import create_project
    from apps.slides import services
    from apps.slides.demo import ensure_demo_slide

    user = get_user_model().objects.create_user(username, password=password)
    project = create_project(name=project_name, created_by=user)
    path = ensure_demo_slide(SHARED, REPO / "var" / "test-cache", size=SLIDE_SIZE)
    intake = services.register_path(project=project, path=path, user=user)
    services.ingest(intake.slide.pk)
    slide = intake.slide
    slide.refresh_from_db()  # ingest wrote the dimensions on its own copy of the row
    return user, project, slide


def logged_in_client(user: Any) -> Any:
    """Django's test client, logged in as ``user`` (the full middleware path, no socket)."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client

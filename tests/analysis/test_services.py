"""How a run is cut into chunks: full chunks, then a tail that halves down to single tiles."""

from __future__ import annotations

import pytest

from ml.pipeline import PipelineConfig, analyse
from tests.analysis.conftest import GRID
from tests.conftest import SLIDE_FILE


@pytest.mark.parametrize(
    ("tiles", "size", "sizes"),
    [
        (17, 8, [8, 5, 2, 1, 1]),
        (40, 8, [8, 8, 8, 8, 4, 2, 1, 1]),
        (16, 2, [2, 2, 2, 2, 2, 2, 2, 1, 1]),
        (3, 8, [2, 1]),
        (5, 1, [1, 1, 1, 1, 1]),
        (0, 8, []),
    ],
)
def test_chunks_cover_every_tile_once_and_taper_at_the_end(tiles, size, sizes) -> None:
    from apps.analysis.services import chunk_spans

    spans = chunk_spans(tiles, size)
    assert [end - start for start, end in spans] == sizes
    # Every tile once, in order.
    assert [t for start, end in spans for t in range(start, end)] == list(range(tiles))


@pytest.mark.django_db
def test_a_run_in_tapering_chunks_counts_the_same_cells_as_the_library(
    slide, member, as_user, run_jobs, settings
) -> None:
    from apps.analysis.models import AnalysisRun

    slide.project.toi_tile_size = GRID // 2  # smaller tiles: enough for a full chunk and a tail
    slide.project.save(update_fields=["toi_tile_size"])
    settings.ANALYSIS_CHUNK_SIZE = 3
    code, body = run_jobs(as_user(member), {"slide": slide.pk})
    assert code == 201, body
    run = AnalysisRun.objects.get(pk=body["id"])
    assert run.status == "done", run.error
    sizes = [len(c.tiles) for c in run.chunks.order_by("index")]
    assert sizes[0] == 3 and sizes[-2:] == [1, 1], sizes
    direct = analyse(
        SLIDE_FILE, models_dir=None, device="cpu", config=PipelineConfig(tile_size=GRID // 2)
    )
    assert sum(sizes) == sum(d.keep for d in direct.tiles)
    assert run.summary["cells"] == run.cell_set.annotations.count() == len(direct.cells) > 0

"""Reads of analysis runs: which runs a user sees, and a run's state as the page shows it.

Blinding: a run's *output* (cells found, the count, its ``model_run`` sets) follows the
annotation blinding rule of :func:`apps.annotations.selectors.visible_sets`, the one place it
is written: an annotator of a (slide, stage) still blinded to them sees no model-run set of it,
so an agreement study is not biased by the model. Until the cell set exists (the run is still
going), only reviewers and project admins see cells found so far. Status, per-tile progress,
timings, the models and errors are not output and are shown to every member.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from apps.accounts.api.base import projects_of
from apps.accounts.roles import is_reviewer_or_admin as is_privileged
from apps.annotations.selectors import visible_sets

from .models import AnalysisChunk, AnalysisRun, ChunkStatus, RunStatus


def visible_runs(user) -> QuerySet[AnalysisRun]:
    """Runs of slides in ``user``'s projects (outsiders: none)."""
    return AnalysisRun.objects.filter(slide__project__in=projects_of(user).values("pk"))


def group_name(run_id: int) -> str:
    """The channels group a run's changes are pushed to."""
    return f"analysis-{run_id}"


def sees_output(user, run: AnalysisRun) -> bool:
    """Whether ``user`` may see what the run found (see the module docstring)."""
    if is_privileged(user, run.slide.project):
        return True
    return run.cell_set_id is not None and visible_sets(user).filter(pk=run.cell_set_id).exists()


def run_state(run: AnalysisRun) -> dict[str, Any]:
    """The run as the progress bar and the API show it (everything, before blinding).

    ``stages``: ``{thumbnail, roi, toi, cells, classes}`` each ``{done, total}`` (``cells`` in
    tiles segmented, ``classes`` in tiles whose cells are classified; both summed over chunks);
    ``cells_found``: cells so far (before cross-tile de-duplication), the final count once done;
    ``eta_s``: seconds left, from the cell stage's rate so far (``None`` when unknown).
    """
    chunks = list(
        AnalysisChunk.objects.filter(run=run).values_list(
            "status", "tiles", "tiles_done", "cells_found", "started_at"
        )
    )
    stages = {k: dict(v) for k, v in run.progress.items()}
    total = stages.get("cells", {}).get("total", 0)
    done = sum(n for _, _, n, _, _ in chunks)
    classified = sum(len(tiles) for status, tiles, _, _, _ in chunks if status == ChunkStatus.DONE)
    if "cells" in stages:
        stages["cells"] = {"done": done, "total": total}
        stages["classes"] = {"done": classified, "total": total}
    found = sum(n for _, _, _, n, _ in chunks)
    if run.summary is not None:
        found = run.summary["cells"]
    return {
        "id": run.pk,
        "slide": run.slide_id,
        "status": run.status,
        "error": run.error,
        "stages": stages,
        "cells_found": found,
        "eta_s": _eta(run, chunks, done, total),
        "timings": run.timings,
        "models": run.models_used,
        "device": run.device,
        "summary": run.summary,
        "sets": {"roi": run.roi_set_id, "toi": run.toi_set_id, "cell": run.cell_set_id},
    }


def _eta(run: AnalysisRun, chunks: list[tuple], done: int, total: int) -> float | None:
    if run.status != RunStatus.RUNNING:
        return 0.0 if run.status == RunStatus.DONE else None
    starts = [started for _, _, _, _, started in chunks if started is not None]
    if not starts or not done:
        return None
    elapsed = (timezone.now() - min(starts)).total_seconds()
    return round(elapsed / done * (total - done), 1)


def state_for(user, run: AnalysisRun, state: dict[str, Any] | None = None) -> dict[str, Any]:
    """:func:`run_state` with the output removed for a user blinded to it."""
    state = dict(state or run_state(run))
    if not sees_output(user, run):
        state.update(cells_found=None, summary=None, sets={"roi": None, "toi": None, "cell": None})
        return state
    visible = set(
        visible_sets(user)
        .filter(pk__in=[v for v in state["sets"].values() if v])
        .values_list("pk", flat=True)
    )
    state["sets"] = {k: (v if v in visible else None) for k, v in state["sets"].items()}
    return state


def visible_slide(user, slide_id: int):
    """The slide ``slide_id`` if ``user`` may see it, else ``None`` (the one slide lookup here)."""
    from apps.slides.models import Slide

    return Slide.objects.visible_to(user).select_related("project").filter(pk=slide_id).first()

"""Reports as JSON documents and CSV rows: the one shape the API, the downloads and the pages
share. Figures are the ``ml.agreement`` ``to_dict()`` output, unchanged."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from apps.accounts.models import Project
from apps.slides.models import Slide

from .errors import NotReady
from .services import ProjectStage, ReportResult, SlideRow

CSV_HEADER = [
    "slide_id",
    "slide",
    "stage",
    "annotator_a",
    "annotator_b",
    "figure",
    "value",
    "ci_low",
    "ci_high",
    "n",
]


def report_json(slide: Slide, stage: str, result: ReportResult) -> dict[str, Any]:
    """A slide report with its provenance (when, from which annotation versions, stale?)."""
    report = result.report
    previous = result.previous_computed_at
    return {
        "slide": slide.pk,
        "slide_name": slide.name,
        "status": "ready",
        "computed_at": report.computed_at.isoformat(),
        "compute_seconds": round(report.compute_seconds, 3),
        "recomputed": result.recomputed,
        "was_stale": result.was_stale,
        "previous_computed_at": previous.isoformat() if previous else None,
        "source_state": report.source_state,
        **report.figures,
        "stage": stage,
    }


def not_ready_json(slide: Slide, stage: str, exc: NotReady) -> dict[str, Any]:
    """Why a (slide, stage) has no report yet."""
    return {
        "slide": slide.pk,
        "slide_name": slide.name,
        "stage": stage,
        "status": exc.status,
        "detail": exc.message,
        "tasks": exc.tasks,
        "submitted": exc.submitted,
    }


def row_json(row: SlideRow, stage: str) -> dict[str, Any]:
    if row.result is None:
        return {
            "slide": row.slide.pk,
            "slide_name": row.slide.name,
            "stage": stage,
            "status": row.status,
            "detail": row.message,
        }
    return report_json(row.slide, stage, row.result)


def project_json(project: Project, stages: list[ProjectStage]) -> dict[str, Any]:
    """Per stage: the pooled aggregate (mean and pooled figures with slide-bootstrap CIs) and
    every slide's report or status."""
    return {
        "project": project.pk,
        "project_name": project.name,
        "stages": {
            s.stage: {
                "units": s.units,
                "aggregate": s.aggregate,
                "slides": [row_json(r, s.stage) for r in s.rows],
            }
            for s in stages
        },
    }


# -------------------------------------------------------------------------------- CSV


def slide_csv_rows(slide: Slide, report: dict[str, Any]) -> Iterator[list[Any]]:
    """Long-format rows of one slide report (one per figure, CI and n where there are)."""
    names = [a["username"] for a in report["annotators"]]
    for pair in report["pairs"]:
        head = [slide.pk, slide.name, report["stage"], names[pair["a"]], names[pair["b"]]]
        for figure, value, low, high, n in flatten(pair["figures"]):
            yield [*head, figure, value, low, high, n]
    if report.get("fleiss"):
        fleiss = report["fleiss"]
        yield [slide.pk, slide.name, report["stage"], "all", "all", "fleiss_kappa"] + [
            fleiss["fleiss_kappa"],
            None,
            None,
            fleiss["n_items"],
        ]


def project_csv_rows(project: Project, stages: list[ProjectStage]) -> Iterator[list[Any]]:
    """Every slide's rows, then the project rows (slide ``(project)``)."""
    for stage in stages:
        for row in stage.rows:
            if row.result is not None:
                yield from slide_csv_rows(row.slide, row.result.report.figures)
        if stage.aggregate:
            for figure, value, low, high, n in flatten(stage.aggregate):
                yield ["", "(project)", stage.stage, "all pairs", "", figure, value, low, high, n]


def to_csv(rows: Iterator[list[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_HEADER)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return buf.getvalue()


def flatten(figures: dict[str, Any], prefix: str = "") -> Iterator[tuple[Any, ...]]:
    """``(figure, value, ci_low, ci_high, n)`` for every number of a figures dict: estimates
    (``{"value", "ci", "n"}``) become one row, confusion matrices one row per cell."""
    labels = figures.get("labels")
    for key, value in figures.items():
        name = f"{prefix}{key}"
        if key == "confusion" and labels:
            for i, row in enumerate(value):
                for j, count in enumerate(row):
                    yield (f"{name}[{labels[i]}|{labels[j]}]", count, None, None, None)
        elif key == "per_class":
            for label, stats in value.items():
                yield (
                    f"{name}[{label}]",
                    stats["agreement"],
                    None,
                    None,
                    stats["n_a"] + stats["n_b"],
                )
        elif isinstance(value, dict) and "value" in value and "ci" in value:
            low, high = value["ci"] or (None, None)
            yield (name, value["value"], low, high, value.get("n"))
        elif isinstance(value, dict):
            yield from flatten(value, f"{name}.")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            yield (name, value, None, None, None)

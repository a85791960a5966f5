"""Everything agreement shows, in one place: reports as JSON documents and CSV rows (the one
shape the API, the downloads and the pages share), what the pages lay out (formatted figures
with their CIs, heat maps, per-slide bar charts) and the adjudication's JSON. Figures are the
``ml.agreement`` ``to_dict()`` output, unchanged. Presenters read stored rows; none computes.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.utils.safestring import SafeString

from apps.accounts.models import Project
from apps.annotations.models import LabelClass, Stage
from apps.core.jobs import job_json
from apps.slides.models import Slide

from . import charts, selectors
from .errors import NotReady
from .models import Adjudication, Decision
from .selectors import ProjectStage, SlideRow, StoredReport

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


def stage_json(slide: Slide, stage: str) -> dict[str, Any]:
    """The stored report of (slide, stage), or that none is computed yet (raises NotReady)."""
    return report_json(slide, stage, selectors.stored_report(slide, stage))


def report_json(slide: Slide, stage: str, stored: StoredReport) -> dict[str, Any]:
    """A stored slide report with its provenance (when, from which annotation versions) and
    ``stale``; without a report, ``status: not_computed``. ``job``: the newest report job."""
    head = {"slide": slide.pk, "slide_name": slide.name, "stage": stage}
    job = job_json(stored.job)
    report = stored.report
    if report is None:
        return head | {
            "status": "not_computed",
            "detail": selectors.NOT_COMPUTED,
            "stale": True,
            "job": job,
        }
    return {
        **head,
        "status": "ready",
        "stale": stored.stale,
        "computed_at": report.computed_at.isoformat(),
        "compute_seconds": round(report.compute_seconds, 3),
        "source_state": report.source_state,
        **report.figures,
        "stage": stage,
        "job": job,
    }


def slide_json(slide: Slide) -> dict[str, Any]:
    """Every stage of the slide: its stored report, or why there is none."""
    stages = {}
    for stage in Stage.values:
        try:
            stages[stage] = stage_json(slide, stage)
        except NotReady as exc:
            stages[stage] = not_ready_json(slide, stage, exc)
    return {"slide": slide.pk, "slide_name": slide.name, "stages": stages}


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
    if row.stored is None:
        return {
            "slide": row.slide.pk,
            "slide_name": row.slide.name,
            "stage": stage,
            "status": row.status,
            "detail": row.message,
        }
    return report_json(row.slide, stage, row.stored)


def project_json(project: Project, stages: list[ProjectStage]) -> dict[str, Any]:
    """Per stage: the pooled aggregate (mean and pooled figures with slide-bootstrap CIs) and
    every slide's report or status."""
    return {
        "project": project.pk,
        "project_name": project.name,
        "stages": {
            s.stage: {
                "units": s.units,
                "stale": s.stale,
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
            if row.stored is not None and row.stored.report is not None:
                yield from slide_csv_rows(row.slide, row.stored.report.figures)
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


# ------------------------------------------------------------------------------ pages

STAGE_TITLES = {"roi": "Region of interest", "toi": "Tiles of interest", "cell": "Cells"}


def fmt(estimate: dict[str, Any] | float | None, digits: int = 3) -> str:
    """``0.851 [0.842–0.860]`` for an estimate with a CI, ``—`` for an undefined value."""
    if isinstance(estimate, dict):
        value, ci = estimate.get("value"), estimate.get("ci")
    else:
        value, ci = estimate, None
    if value is None:
        return "—"
    text = f"{value:.{digits}f}"
    return f"{text} [{ci[0]:.{digits}f}–{ci[1]:.{digits}f}]" if ci else text


@dataclass(frozen=True)
class Figure:
    name: str
    value: str
    n: str = ""


@dataclass
class PairView:
    a: str
    b: str
    figures: list[Figure]
    per_class: list[dict[str, Any]] = field(default_factory=list)
    heatmap: SafeString | None = None


@dataclass
class StageSection:
    """One stage of the slide page. ``status``: ``ready`` (a stored report, maybe
    ``stored.stale``), ``not_computed``, or why the stage cannot be compared (NotReady)."""

    stage: str
    title: str
    status: str
    message: str = ""
    stored: StoredReport | None = None
    pairs: list[PairView] = field(default_factory=list)
    fleiss: dict[str, Any] | None = None
    adjudication: Adjudication | None = None

    @property
    def comparable(self) -> bool:
        return self.stored is not None

    @property
    def job(self) -> dict[str, Any] | None:
        return job_json(self.stored.job) if self.stored else None

    @property
    def can_compute(self) -> bool:
        """Missing or stale, and no job already at it: the page offers to (re)compute."""
        stored = self.stored
        return stored is not None and stored.stale and not (stored.job and stored.job.active)


def slide_sections(slide: Slide) -> list[StageSection]:
    """One section per stage: its stored report (stale or not) or why there is none."""
    adjudications = {
        a.stage: a for a in Adjudication.objects.filter(slide=slide).defer("items", "items_state")
    }
    names = selectors.class_names(slide.project)
    out = []
    for stage in Stage.values:
        section = StageSection(stage, STAGE_TITLES[stage], "ready")
        section.adjudication = adjudications.get(stage)
        try:
            section.stored = selectors.stored_report(slide, stage)
        except NotReady as exc:
            section.status, section.message = exc.status, exc.message
            out.append(section)
            continue
        if section.stored.report is None:
            section.status, section.message = "not_computed", selectors.NOT_COMPUTED
            out.append(section)
            continue
        figures = section.stored.report.figures
        users = [a["username"] for a in figures["annotators"]]
        section.pairs = [
            _pair_view(stage, users[p["a"]], users[p["b"]], p["figures"], names)
            for p in figures["pairs"]
        ]
        section.fleiss = figures.get("fleiss")
        out.append(section)
    return out


def _pair_view(
    stage: str, a: str, b: str, figures: dict[str, Any], names: dict[str, str]
) -> PairView:
    if stage == Stage.ROI:
        return PairView(a, b, _roi_figures(figures))
    labels = figures if stage == Stage.TOI else figures["classes"]
    view = PairView(a, b, _toi_figures(figures) if stage == Stage.TOI else _cell_figures(figures))
    shown = [names.get(k, k) for k in labels["labels"]]
    view.heatmap = charts.heatmap(shown, labels["confusion"], row_title=a, col_title=b)
    view.per_class = [
        {"name": names.get(k, k), **row, "agreement": fmt(row["agreement"])}
        for k, row in labels["per_class"].items()
        if row["n_a"] or row["n_b"]
    ]
    return view


def _roi_figures(f: dict[str, Any]) -> list[Figure]:
    return [
        Figure("IoU", fmt(f["iou"])),
        Figure("Dice", fmt(f["dice"])),
        Figure("Area A / B (px²)", f"{f['area_a']:,.0f} / {f['area_b']:,.0f}"),
    ]


def _toi_figures(f: dict[str, Any]) -> list[Figure]:
    return [
        Figure("Cohen's κ", fmt(f["kappa"]), str(f["n"])),
        Figure("Percent agreement", fmt(f["percent_agreement"]), str(f["n"])),
        Figure("Tiles labelled by both", str(f["n"])),
        Figure("Tiles only A labelled", str(f["only_a"])),
        Figure("Tiles only B labelled", str(f["only_b"])),
    ]


def _cell_figures(f: dict[str, Any]) -> list[Figure]:
    classes = f["classes"]
    return [
        Figure("Matched cells (IoU ≥ {:g})".format(f["iou_threshold"]), str(f["matched"])),
        Figure("Cells only A drew", str(f["a_only"])),
        Figure("Cells only B drew", str(f["b_only"])),
        Figure("Mean IoU of matched cells", fmt(f["mean_iou"]), str(f["matched"])),
        Figure("Mean Dice of matched cells", fmt(f["mean_dice"]), str(f["matched"])),
        Figure("Detection F1", fmt(f["detection_f1"])),
        Figure("Class Cohen's κ", fmt(classes["kappa"]), str(classes["n"])),
        Figure("Class percent agreement", fmt(classes["percent_agreement"]), str(classes["n"])),
    ]


# ------------------------------------------------------------------------------- project


@dataclass
class ProjectSection:
    stage: str
    title: str
    report: ProjectStage
    figures: list[Figure] = field(default_factory=list)
    charts: list[SafeString] = field(default_factory=list)
    heatmap: SafeString | None = None


#: Per stage: (title, path into a pair's figures, path into the aggregate, published key).
HEADLINES: dict[str, list[tuple[str, tuple[str, ...], tuple[str, ...], str | None]]] = {
    "roi": [("ROI IoU", ("iou",), ("iou",), "roi"), ("ROI Dice", ("dice",), ("dice",), None)],
    "toi": [("TOI Cohen's κ", ("kappa",), ("kappa",), "toi")],
    "cell": [
        ("Cell mean IoU", ("mean_iou",), ("mean_iou",), "cell"),
        ("Cell mean Dice", ("mean_dice",), ("mean_dice",), None),
        ("Detection F1", ("detection_f1",), ("detection_f1",), None),
        ("Class Cohen's κ", ("classes", "kappa"), ("classes", "kappa"), "class"),
    ],
}


def project_sections(project: Project) -> list[ProjectSection]:
    out = []
    names = selectors.class_names(project)
    for stage in Stage.values:
        report = selectors.project_report(project=project, stage=stage)
        section = ProjectSection(stage, STAGE_TITLES[stage], report)
        if report.aggregate:
            _fill_project_section(section, names)
        out.append(section)
    return out


def _fill_project_section(section: ProjectSection, names: dict[str, str]) -> None:
    aggregate = section.report.aggregate or {}
    for title, pair_path, agg_path, published in HEADLINES[section.stage]:
        figure = _dig(aggregate, agg_path)
        section.figures.append(
            Figure(title, f"mean {fmt(figure['mean'])} · pooled {fmt(figure['pooled'])}")
        )
        rows = [
            charts.Bar(label, *_value_ci(_dig(pair, pair_path)))
            for label, pair in _pairs(section.report)
        ]
        reference = selectors.PUBLISHED.get(published) if published else None
        section.charts.append(
            charts.bars(title, rows, reference=reference, mean=figure["mean"]["value"])
        )
    labels = aggregate if section.stage == Stage.TOI else aggregate.get("classes")
    if labels and section.stage != Stage.ROI:
        shown = [names.get(k, k) for k in labels["labels"]]
        section.heatmap = charts.heatmap(
            shown, labels["confusion"], row_title="annotator A", col_title="annotator B"
        )


def _pairs(report: ProjectStage) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for row in report.rows:
        if row.stored is None or row.stored.report is None:
            continue
        figures = row.stored.report.figures
        users = [a["username"] for a in figures["annotators"]]
        for pair in figures["pairs"]:
            label = row.slide.name
            if len(figures["pairs"]) > 1:
                label += f" ({users[pair['a']]} v {users[pair['b']]})"
            out.append((label, pair["figures"]))
    return out


def _dig(data: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        data = data[key]
    return data


def _value_ci(figure: Any) -> tuple[float | None, float | None, float | None]:
    if isinstance(figure, dict):
        low, high = figure.get("ci") or (None, None)
        return figure.get("value"), low, high
    return figure, None, None


# ------------------------------------------------------------------------- adjudication


def adjudication_json(found: Adjudication) -> dict[str, Any]:
    """Everything the adjudication page needs: sets, progress, items with their decisions,
    and the job filling the consensus (``filled`` false until it is done).

    Until then the items are not listed: the fill job computes (and caches) them.
    """
    filled = selectors.is_filled(found)
    items = selectors.disagreements(found) if filled else []
    decisions = {d.key: decision_json(d) for d in found.decisions.all()}
    classes = LabelClass.objects.filter(project=found.slide.project)
    return {
        "id": found.pk,
        "slide": found.slide_id,
        "stage": found.stage,
        "set_a": {"id": found.set_a_id, "annotator": str(found.set_a.annotator)},
        "set_b": {"id": found.set_b_id, "annotator": str(found.set_b.annotator)},
        "consensus": found.consensus_id,
        "iou_threshold": found.iou_threshold,
        "started_at": found.started_at.isoformat(),
        "completed_at": found.completed_at.isoformat() if found.completed_at else None,
        "filled": filled,
        "job": job_json(selectors.fill_job(found)),
        "progress": selectors.decision_progress(found, items),
        "items": [i.to_dict() | {"decision": decisions.get(i.key)} for i in items],
        "classes": [
            {"key": c.key, "name": c.name, "colour": c.colour, "retired": c.retired}
            for c in classes
        ],
    }


def decision_json(decision: Decision) -> dict[str, Any]:
    return {
        "key": decision.key,
        "kind": decision.kind,
        "choice": decision.choice,
        "label": decision.label,
        "results": decision.results,
        "decided_by": str(decision.decided_by) if decision.decided_by else None,
        "decided_at": decision.decided_at.isoformat(),
    }

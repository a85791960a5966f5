"""What the agreement pages show, prepared in Python so the templates only lay it out:
formatted figures with their CIs, the heat maps and the per-slide bar charts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.utils.safestring import SafeString

from apps.annotations.models import Stage
from apps.slides.models import Slide

from . import charts, selectors, services
from .errors import NotReady
from .models import Adjudication

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
    stage: str
    title: str
    status: str
    message: str = ""
    result: services.ReportResult | None = None
    pairs: list[PairView] = field(default_factory=list)
    fleiss: dict[str, Any] | None = None
    adjudication: Adjudication | None = None


def slide_sections(slide: Slide) -> list[StageSection]:
    """One section per stage: its report (refreshed when stale) or why there is none."""
    adjudications = {a.stage: a for a in Adjudication.objects.filter(slide=slide)}
    names = selectors.class_names(slide.project)
    out = []
    for stage in Stage.values:
        section = StageSection(stage, STAGE_TITLES[stage], "ready")
        section.adjudication = adjudications.get(stage)
        try:
            section.result = services.slide_report(slide=slide, stage=stage)
        except NotReady as exc:
            section.status, section.message = exc.status, exc.message
            out.append(section)
            continue
        figures = section.result.report.figures
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
    report: services.ProjectStage
    figures: list[Figure] = field(default_factory=list)
    charts: list[SafeString] = field(default_factory=list)
    heatmap: SafeString | None = None


#: Per stage: (title, path into a pair's figures, path into the aggregate, published key).
HEADLINES = {
    "roi": [("ROI IoU", ("iou",), ("iou",), "roi"), ("ROI Dice", ("dice",), ("dice",), None)],
    "toi": [("TOI Cohen's κ", ("kappa",), ("kappa",), "toi")],
    "cell": [
        ("Cell mean IoU", ("mean_iou",), ("mean_iou",), "cell"),
        ("Cell mean Dice", ("mean_dice",), ("mean_dice",), None),
        ("Detection F1", ("detection_f1",), ("detection_f1",), None),
        ("Class Cohen's κ", ("classes", "kappa"), ("classes", "kappa"), "class"),
    ],
}


def project_sections(project: Any) -> list[ProjectSection]:
    out = []
    names = selectors.class_names(project)
    for stage in Stage.values:
        report = services.project_report(project=project, stage=stage)
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


def _pairs(report: services.ProjectStage) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for row in report.rows:
        if row.result is None:
            continue
        figures = row.result.report.figures
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

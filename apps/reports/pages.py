"""What the report page and its PDF show, prepared in Python so the templates only lay it out."""

from __future__ import annotations

import json
from typing import Any

from django.utils.safestring import SafeString

from apps.agreement.charts import Bar, bars
from apps.annotations.models import LabelClass
from ml.count import POOLED_ERYTHROBLASTS, POOLED_ERYTHROBLASTS_NAME

from .document import class_names, dcc_lines
from .models import ReportVersion
from .selectors import report_body


def histogram(document: dict[str, Any]) -> SafeString:
    """The 16 proportions with their 95% Wilson CI whiskers (the agreement pages' bar chart)."""
    rows = [
        Bar(r["name"], r["proportion"], r["ci_low"], r["ci_high"])
        for r in dcc_lines(document["dcc"])
    ]
    return bars("Differential count: proportion with 95% Wilson CI", rows)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}"


def context(version: ReportVersion) -> dict[str, Any]:
    """Everything the report template needs for ``version``."""
    body = report_body(version)
    doc = body["document"]
    dcc = doc["dcc"]
    rows = [
        r | {"percent": _pct(r["proportion"]), "ci": f"{_pct(r['ci_low'])}–{_pct(r['ci_high'])}"}
        for r in dcc_lines(dcc)
    ]
    names = {k: v["name"] for k, v in doc["classes"].items()}
    run = version.report.run
    hotkeys = list(
        LabelClass.objects.filter(project_id=run.slide.project_id, retired=False)
        .order_by("order", "id")
        .values("key", "name", "hotkey", "colour")
    )
    return {
        "run": run,
        "version": version,
        "body": body,
        "doc": doc,
        "rows": rows,
        "non_counted": [(names.get(k, k), n) for k, n in dcc["non_counted"].items()],
        "me_ratio": "—" if dcc["me_ratio"] is None else f"{dcc['me_ratio']:.2f}",
        "blast": "—" if dcc["blast_percentage"] is None else f"{dcc['blast_percentage']:.1f}",
        "histogram": histogram(doc),
        "hotkeys": hotkeys,
        "hotkeys_json": json.dumps(hotkeys),
    }


def comparison_context(version: ReportVersion, user) -> dict[str, Any] | None:
    """The manual-count comparison for ``user`` (``None`` when they have no manual count)."""
    from . import charts, manual

    run = version.report.run
    sequence = manual.counter_of(run.slide, user)
    if not sequence:
        return None
    figures = manual.version_comparison(version, sequence)
    by_key = class_names(run) | {POOLED_ERYTHROBLASTS: POOLED_ERYTHROBLASTS_NAME}
    names = [by_key[k] for k in figures["keys"]]
    ba = figures["bland_altman"] or {}
    return {
        "figures": figures,
        "regression": charts.regression(figures["auto_percent"], figures["manual_percent"], names),
        "bland_altman": charts.bland_altman_plot(
            figures["auto_percent"],
            figures["manual_percent"],
            names,
            ba.get("mean_diff"),
            ba.get("lower"),
            ba.get("upper"),
        ),
    }

"""The canonical report JSON and its hash: the one place a report's content is defined.

:func:`report_document` builds the content of one report version from the database (the cells
of its review set, the run's record); :func:`canonical_bytes` serialises it one way only (sorted
keys, no spaces, ASCII), and :func:`content_sha256` is the hash a signature is bound to. The
count and its statistics come from :mod:`ml.count` (Wilson CIs, M:E, blast %, rescreening).

The signature itself is not part of the content: it is stored beside it, with the hash.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ml.classes import ERYTHROBLAST_UNSTAGED, ERYTHROBLAST_UNSTAGED_NAME, CellClass
from ml.count import REVIEW_THRESHOLD, UNCLASSIFIED, differential_count, rescreening_alert
from ml.pipeline import PipelineConfig

from .models import ReportVersion

SCHEMA = "bmadcc-dcc-report/1"


def run_classes(run) -> tuple[CellClass, ...]:
    """The class set the run counted with (its stored pipeline config)."""
    return PipelineConfig.from_dict(run.config).classes


def flagged_ids(version: ReportVersion) -> set[int]:
    """Ids of the review set's live cells that need review: the one test of it.

    The run flags a cell (``probabilities["review"]``) when its top class probability is below
    :data:`ml.count.REVIEW_THRESHOLD`; read with a JSON lookup in the database, so the report
    never parses 5,000 probability maps."""
    return set(
        version.review_set.annotations.filter(
            is_deleted=False, probabilities__review=True
        ).values_list("id", flat=True)
    )


def report_document(version: ReportVersion) -> dict[str, Any]:
    """The content of ``version`` as the report, its PDF and its FHIR form show it."""
    run = version.report.run
    rows = list(
        version.review_set.annotations.filter(is_deleted=False)
        .order_by("id")
        .values_list("id", "label", "version")
    )
    classes = run_classes(run)
    dcc = differential_count([label or UNCLASSIFIED for _, label, _ in rows], classes)
    flagged = flagged_ids(version)
    looked = set(version.marks.values_list("annotation_id", flat=True))
    remaining = len(flagged - looked)
    present = {label for _, label, _ in rows if label}
    return {
        "schema": SCHEMA,
        "run": run.pk,
        "version": version.number,
        "supersedes": version.supersedes.number if version.supersedes else None,
        "amendment_reason": version.reason,
        "slide": {"id": run.slide_id, "name": run.slide.name, "sha256": run.slide_sha256},
        "dcc": dcc.to_dict(),
        "classes": {c.key: {"name": c.name, "counted": c.counted} for c in classes}
        | (
            {ERYTHROBLAST_UNSTAGED: {"name": ERYTHROBLAST_UNSTAGED_NAME, "counted": True}}
            if dcc.erythroblasts_unstaged
            else {}
        ),
        "review": {
            "threshold": REVIEW_THRESHOLD,
            "flagged": len(flagged),
            "looked_at": len(flagged & looked),
            "remaining": remaining,
            "reclassified": version.marks.filter(action="reclassified").count(),
        },
        "alerts": _alerts(run, dcc, present, remaining, classes),
        "provenance": _provenance(run),
        "cells": len(rows),
        "cells_sha256": _cells_digest(rows),
    }


def _alerts(run, dcc, present: set[str], remaining: int, classes) -> list[dict[str, Any]]:
    alerts: list[dict[str, Any]] = []
    if remaining:
        alerts.append(
            {
                "kind": "review_required",
                "message": f"{remaining} cells need review "
                f"(top probability < {REVIEW_THRESHOLD:.2f})",
            }
        )
    rescreen = rescreening_alert(present, _known_rates(run))
    if rescreen is not None:
        alerts.append(rescreen.to_dict())
    classifier = run.models_used.get("classification", {})
    if classifier.get("kind") != "model" or not dcc.classifier_installed:
        alerts.append({"kind": "no_classifier", "message": "No cell classifier installed."})
    else:
        covered = set((run.summary or {}).get("classifier_classes") or ())
        missing = [c.name for c in classes if c.counted and c.key not in covered]
        if missing:
            names = ", ".join(c.name for c in classes if c.key in covered)
            alerts.append(
                {
                    "kind": "partial_classifier",
                    "message": f"The classifier covers only these classes: {names}.",
                }
            )
    baselines = [
        f"{stage} ({used.get('name', '')})"
        for stage, used in run.models_used.items()
        if used.get("kind") == "baseline"
    ]
    if baselines:
        alerts.append(
            {
                "kind": "baselines",
                "message": "These stages ran baselines, not trained models: "
                + ", ".join(baselines)
                + ".",
            }
        )
    return alerts


def _known_rates(run) -> dict[str, float]:
    """Validation misclassification rates the run recorded (its rescreening alert's classes).

    The run stores the rates of the classes present in its own count only; a class that the
    review brings in and the run never saw has no recorded rate and cannot raise the alert.
    """
    for alert in (run.summary or {}).get("alerts", []):
        if alert.get("kind") == "automatic_rescreening":
            return dict(alert.get("classes") or {})
    return {}


def _provenance(run) -> dict[str, Any]:
    return {
        "run_id": run.pk,
        "slide_sha256": run.slide_sha256,
        "models": [
            {
                "stage": stage,
                "kind": used.get("kind"),
                "name": used.get("name"),
                "architecture": used.get("architecture"),
                "weights_sha256": used.get("weights_sha256"),
                # The registry version (id and number) the run used; None before the registry.
                "version": used.get("version"),
                "version_id": used.get("version_id"),
            }
            for stage, used in run.models_used.items()
        ],
        "config": run.config,
        "time_taken_s": run.timings.get("total"),
        "software_version": run.software_version,
        "device": run.device,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


def _cells_digest(rows: list[tuple[int, str, int]]) -> str:
    """SHA-256 over every cell's (id, label, version): a swap of two labels changes it."""
    digest = hashlib.sha256()
    for pk, label, ver in rows:
        digest.update(f"{pk}\t{label}\t{ver}\n".encode())
    return digest.hexdigest()


def canonical_bytes(document: dict[str, Any]) -> bytes:
    """The one serialisation a signature hashes: sorted keys, no spaces, ASCII only."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def content_sha256(document: dict[str, Any]) -> str:
    """The hash bound to a signature (hex SHA-256 of :func:`canonical_bytes`)."""
    return hashlib.sha256(canonical_bytes(document)).hexdigest()


def dcc_lines(dcc: dict[str, Any]) -> list[dict[str, Any]]:
    """A document's DCC lines in report order: the class rows, then erythroblasts without a
    stage when the classifier gave any (documents written before that line existed lack it)."""
    unstaged = dcc.get("unstaged_row")
    return [*dcc["rows"], *([unstaged] if unstaged else [])]


def class_names(run) -> dict[str, str]:
    """Class key -> name for a run's cells: its class set, plus the classifier-only label."""
    return {c.key: c.name for c in run_classes(run)} | {
        ERYTHROBLAST_UNSTAGED: ERYTHROBLAST_UNSTAGED_NAME
    }


def class_keys_of(run) -> set[str]:
    """Keys of :func:`run_classes` (what a cell of this run may be reclassified to)."""
    return {c.key for c in run_classes(run)}

"""The manual count on glass and its comparison with the automated count (SPEC §4).

Saving and reading a user's counter for a slide, and the figures of the comparison: Pearson r,
Lin's CCC and Bland-Altman on the 16-component percentage vectors, all from
:func:`ml.count.compare_with_manual`.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from apps.annotations.selectors import active_label_keys
from ml.count import compare_with_manual

from .document import dcc_lines, run_classes
from .errors import InvalidInput
from .models import ManualCount, ReportVersion
from .selectors import report_body

#: The published agreement of an automated and a manual marrow DCC, shown as context: one
#: case (r 0.9438, CCC 0.9401) and the average over cases (about 0.8).
PUBLISHED = {"case_r": 0.9438, "case_ccc": 0.9401, "average": 0.8}
#: Totals at which the counter gives a cue.
MILESTONES = (100, 200, 300)


def counter_of(slide, user: User) -> list[str]:
    found = ManualCount.objects.filter(slide=slide, user=user).first()
    return list(found.sequence) if found else []


@transaction.atomic
def save_counter(*, slide, user: User, sequence: Any) -> ManualCount:
    """Store ``sequence`` (class keys in pressed order) as ``user``'s count of ``slide``."""
    if not isinstance(sequence, list) or not all(isinstance(k, str) for k in sequence):
        raise InvalidInput("sequence must be a list of class keys", field="sequence")
    unknown = sorted(set(sequence) - active_label_keys(slide.project_id))
    if unknown:
        raise InvalidInput(f"unknown or retired classes: {unknown}", field="sequence")
    count, _ = ManualCount.objects.update_or_create(
        slide=slide, user=user, defaults={"sequence": sequence}
    )
    return count


def version_comparison(version: ReportVersion, sequence: list[str]) -> dict[str, Any]:
    """``version``'s count against a manual ``sequence``. Its unstaged erythroblasts take part:
    when there are any, the erythroblast stages are compared as one pooled component
    (:func:`ml.count.compare_with_manual`), not left out of the automated percentages."""
    doc = report_body(version)["document"]
    auto = {line["key"]: line["count"] for line in dcc_lines(doc["dcc"])}
    return comparison(auto, sequence, run_classes(version.report.run))


def comparison(auto_counts: dict[str, int], sequence: list[str], classes) -> dict[str, Any]:
    """The comparison's figures (``ml.count.compare_with_manual``) and the published context."""
    result = compare_with_manual(auto_counts, Counter(sequence), classes)
    return result.to_dict() | {"manual_total": len(sequence), "published": PUBLISHED}

"""Registry reads: what a user sees (members of the project; outsiders see nothing, so 404)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils.safestring import SafeString

from apps.accounts.api.base import projects_of
from apps.agreement.charts import heatmap

from .models import ModelVersion, RegistryAuditEntry, TrainingJob


def visible_versions(user: Any) -> QuerySet[ModelVersion]:
    return ModelVersion.objects.filter(project__in=projects_of(user)).select_related(
        "registered_by"
    )


def visible_training_jobs(user: Any) -> QuerySet[TrainingJob]:
    return TrainingJob.objects.filter(project__in=projects_of(user)).select_related("result")


def audit_log(version: ModelVersion) -> QuerySet[RegistryAuditEntry]:
    """The audit entries of ``version``'s task in its project, newest first."""
    return RegistryAuditEntry.objects.filter(
        project_id=version.project_id, task=version.task
    ).select_related("from_version", "to_version", "user")


def confusion_svg(version: ModelVersion) -> SafeString | None:
    """The validation confusion matrix as an SVG heat map (rows true), or None without one."""
    if not version.confusion_matrix:
        return None
    return heatmap(
        list(version.card.get("classes", [])),
        version.confusion_matrix,
        row_title="true class",
        col_title="predicted",
    )

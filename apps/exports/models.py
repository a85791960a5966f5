"""Export jobs: one row per requested export, a small state machine with progress.

queued -> running -> done | failed. A task claims a queued row with a conditional update;
retrying is a new row. ``selection`` is the validated request (slides with their source set
per stage, formats, split seed and fractions, class keys, output kind); ``output_name`` is the
ZIP or folder under ``settings.EXPORT_DIR`` once done.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.accounts.models import Project


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class OutputKind(models.TextChoices):
    ZIP = "zip", "A ZIP file to download"
    FOLDER = "folder", "A folder on the server"


class ExportJob(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="export_jobs")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    selection = models.JSONField()
    status = models.CharField(
        max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True
    )
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    progress_message = models.CharField(max_length=300, blank=True)
    error = models.TextField(blank=True)
    output_name = models.CharField(max_length=255, blank=True)
    output_bytes = models.BigIntegerField(null=True, blank=True)
    manifest = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"export {self.pk} of project {self.project_id} ({self.status})"

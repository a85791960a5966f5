"""Slides: a file on disk (content-addressed by SHA-256) registered in one project."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db import models

from apps.accounts.models import Project


class SlideStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class SlideSource(models.TextChoices):
    UPLOAD = "upload", "Uploaded through the browser or API"
    REGISTER = "register", "Registered from the server's disk"
    DEMO = "demo", "Built by the demo setup"


class SlideQuerySet(models.QuerySet["Slide"]):
    def visible_to(self, user) -> SlideQuerySet:
        return self.filter(project__in=Project.objects.visible_to(user))


class Slide(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="slides")
    name = models.CharField(max_length=255)
    original_filename = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64, db_index=True)
    # Relative to SLIDE_STORAGE_DIR for stored files; absolute for registered-in-place files.
    file_path = models.CharField(max_length=1024)
    # The file OpenSlide opens: the original, or the pyramidal TIFF made from a flat image.
    view_path = models.CharField(max_length=1024, blank=True)
    file_size = models.BigIntegerField(default=0)
    source = models.CharField(max_length=20, choices=SlideSource.choices)

    status = models.CharField(
        max_length=20, choices=SlideStatus.choices, default=SlideStatus.PENDING, db_index=True
    )
    error = models.TextField(blank=True)
    # Set when a worker claims the ingest, so a second worker does not repeat it.
    ingest_started_at = models.DateTimeField(null=True, blank=True)
    ingested_at = models.DateTimeField(null=True, blank=True)

    vendor = models.CharField(max_length=100, blank=True)
    width = models.PositiveBigIntegerField(null=True, blank=True)
    height = models.PositiveBigIntegerField(null=True, blank=True)
    levels = models.JSONField(default=list, blank=True)
    mpp_x = models.FloatField(null=True, blank=True)
    mpp_y = models.FloatField(null=True, blank=True)
    objective_power = models.FloatField(null=True, blank=True)
    associated_images = models.JSONField(default=list, blank=True)
    properties = models.JSONField(default=dict, blank=True)
    converted_from_flat = models.BooleanField(default=False)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = SlideQuerySet.as_manager()

    class Meta:
        ordering = ["project_id", "name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "sha256"], name="one_copy_per_project")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def stored_file(self) -> Path:
        path = Path(self.file_path)
        return path if path.is_absolute() else settings.SLIDE_STORAGE_DIR / path

    @property
    def viewable_file(self) -> Path:
        if not self.view_path:
            return self.stored_file
        path = Path(self.view_path)
        return path if path.is_absolute() else settings.SLIDE_STORAGE_DIR / path

    @property
    def has_scale(self) -> bool:
        return self.mpp_x is not None and self.mpp_y is not None

"""The DCC report of an analysis run: versions, review marks, signatures and the audit log.

A :class:`Report` belongs to one done :class:`~apps.analysis.models.AnalysisRun`. Its content
lives in :class:`ReportVersion` rows: version 1 is made from the run, an amendment is a new
version that ``supersedes`` the signed one before it. Each version has its own **review set**,
a copy of the cells it starts from (the run's ``model_run`` cell set for version 1, the
superseded version's review set for an amendment): reclassifications edit that copy through the
annotation services (version, history, who), so the run's original model output is never
touched and stays available for "model vs. corrected" figures.

Signing stores the printed name, the time (with time zone), the meaning and the SHA-256 of the
canonical report JSON (:mod:`apps.reports.document`). A signed version, its review marks and
its review set's cells are refused by the database (migration 0002's triggers) as well as by
the services.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.analysis.models import AnalysisRun
from apps.annotations.models import Annotation, AnnotationSet

#: The meaning of every signature (21 CFR Part 11 §11.50(a)(3)).
SIGNATURE_MEANING = "reviewed and approved as final report"


class Report(models.Model):
    run = models.OneToOneField(AnalysisRun, on_delete=models.PROTECT, related_name="report")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"report of analysis {self.run_id}"


class ReportVersion(models.Model):
    report = models.ForeignKey(Report, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    supersedes = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="superseded_by"
    )
    reason = models.TextField(blank=True)  # why an amendment was made ("" for version 1)
    review_set = models.OneToOneField(
        AnnotationSet, on_delete=models.PROTECT, related_name="report_version"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    signer_name = models.CharField(max_length=300, blank=True)  # printed name at signing
    signed_at = models.DateTimeField(null=True, blank=True)
    signer_time_zone = models.CharField(max_length=64, blank=True)
    meaning = models.CharField(max_length=100, blank=True)
    signed_sha256 = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["report_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["report", "number"], name="one_report_version_number")
        ]

    def __str__(self) -> str:
        return f"version {self.number} of {self.report}"

    @property
    def is_signed(self) -> bool:
        """The one "is signed" test: a version with a signature time is final."""
        return self.signed_at is not None


class MarkAction(models.TextChoices):
    CONFIRMED = "confirmed", "Confirmed the class"
    RECLASSIFIED = "reclassified", "Reclassified"


class ReviewMark(models.Model):
    """A cell of a version's review set that a reviewer has looked at (its latest action)."""

    version = models.ForeignKey(ReportVersion, on_delete=models.CASCADE, related_name="marks")
    annotation = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=20, choices=MarkAction.choices)
    at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "annotation"], name="one_mark_per_cell")
        ]

    def __str__(self) -> str:
        return f"{self.action} cell {self.annotation_id} in {self.version}"


class AuditAction(models.TextChoices):
    CREATED = "created", "Report created"
    RECLASSIFIED = "reclassified", "Cell reclassified"
    CONFIRMED = "confirmed", "Cell confirmed"
    SIGNED = "signed", "Signed"
    SIGN_FAILED = "sign_failed", "Failed signature attempt"
    AMENDMENT_STARTED = "amendment_started", "Amendment started"
    AMENDED = "amended", "Amendment signed"


class AuditEntry(models.Model):
    """Who did what to a report, when. Append-only (migration 0002 refuses updates)."""

    report = models.ForeignKey(Report, on_delete=models.PROTECT, related_name="audit")
    version_number = models.PositiveIntegerField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    username = models.CharField(max_length=150)  # kept if the account goes
    at = models.DateTimeField(auto_now_add=True)
    action = models.CharField(max_length=20, choices=AuditAction.choices)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["report_id", "at", "id"]

    def __str__(self) -> str:
        return f"{self.action} by {self.username} at {self.at:%Y-%m-%d %H:%M:%S %Z}"


class ManualCount(models.Model):
    """One user's manual differential of one slide on glass, keyed in on the counter page.

    ``sequence`` is every class key in the order it was pressed (undo removes the last); the
    counts are derived from it, so they can never disagree.
    """

    slide = models.ForeignKey(
        "slides.Slide", on_delete=models.CASCADE, related_name="manual_counts"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    sequence = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["slide", "user"], name="one_manual_count_per_user")
        ]

    def __str__(self) -> str:
        return f"manual count of slide {self.slide_id} by {self.user_id} ({len(self.sequence)})"

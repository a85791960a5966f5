"""Agreement reports and adjudications.

A :class:`SlideReport` caches the figures of one (slide, stage) together with the *source
state* they came from: for every annotator set, its live and total annotation counts, the sum
of versions and the latest ``updated_at``. Any create, edit, delete or restore changes that
state, so comparing it with the current one says whether the report is stale.

An :class:`Adjudication` walks the disagreements between two annotator sets of a (slide,
stage) and writes the reviewer's choices into a consensus ``AnnotationSet``; each choice is a
:class:`Decision`, kept as it is made, so a half-done adjudication resumes where it stopped.

An :class:`AgreementJob` is the heavy work of either, done by a django-q2 task and shown on
the page while it runs: computing a slide report, or filling a new adjudication's consensus
with what the annotators agree on (see :mod:`apps.core.jobs`).

Fields only: computing goes through ``services``, reads through ``selectors``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.annotations.models import AnnotationSet, Stage
from apps.core.jobs import ACTIVE, Job
from apps.slides.models import Slide


class SlideReport(models.Model):
    slide = models.ForeignKey(Slide, on_delete=models.CASCADE, related_name="agreement_reports")
    stage = models.CharField(max_length=10, choices=Stage.choices)
    # The figures as the API returns them: annotators, pairs (ml.agreement to_dict()), Fleiss.
    figures = models.JSONField()
    # What the figures were computed from; see the module docstring.
    source_state = models.JSONField()
    computed_at = models.DateTimeField()
    compute_seconds = models.FloatField(default=0.0)

    class Meta:
        ordering = ["slide_id", "stage"]
        constraints = [
            models.UniqueConstraint(fields=["slide", "stage"], name="one_report_per_slide_stage")
        ]

    def __str__(self) -> str:
        return f"{self.stage} agreement of slide {self.slide_id}"


class Adjudication(models.Model):
    slide = models.ForeignKey(Slide, on_delete=models.CASCADE, related_name="adjudications")
    stage = models.CharField(max_length=10, choices=Stage.choices)
    set_a = models.ForeignKey(AnnotationSet, on_delete=models.PROTECT, related_name="+")
    set_b = models.ForeignKey(AnnotationSet, on_delete=models.PROTECT, related_name="+")
    consensus = models.OneToOneField(
        AnnotationSet, on_delete=models.PROTECT, related_name="adjudication"
    )
    iou_threshold = models.FloatField()
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # The disagreement list (Item.to_dict() each) as the fill job computed it, and the source
    # state of the two sets it came from: every process reads it, whatever its cache.
    items = models.JSONField(default=list, blank=True)
    items_state = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["slide_id", "stage"]
        constraints = [
            models.UniqueConstraint(
                fields=["slide", "stage"], name="one_adjudication_per_slide_stage"
            )
        ]

    def __str__(self) -> str:
        return f"{self.stage} adjudication of slide {self.slide_id}"


class Choice(models.TextChoices):
    A = "a", "Annotator A"
    B = "b", "Annotator B"
    EDIT = "edit", "Reviewer's edit"


class Decision(models.Model):
    """The reviewer's choice for one disagreement, identified by a stable ``key``.

    Keys name the annotations involved (``cell:<a id>:<b id>`` with ``-`` for a missing side,
    ``toi:<col>:<row>``, ``roi``), so they survive recomputing the disagreement list.
    ``results`` lists the consensus annotation ids this choice created.
    """

    adjudication = models.ForeignKey(
        Adjudication, on_delete=models.CASCADE, related_name="decisions"
    )
    key = models.CharField(max_length=80)
    kind = models.CharField(max_length=20)
    choice = models.CharField(max_length=10, choices=Choice.choices)
    label = models.CharField(max_length=64, blank=True, default="")
    results = models.JSONField(default=list)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["adjudication_id", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["adjudication", "key"], name="one_decision_per_disagreement"
            )
        ]

    def __str__(self) -> str:
        return f"{self.key}: {self.choice}"


class JobKind(models.TextChoices):
    REPORT = "report", "Compute the slide report"
    ADJUDICATION = "adjudication", "Fill the consensus with what both annotators agree on"


class AgreementJob(Job):
    """One report computation or adjudication fill of a (slide, stage); at most one active."""

    kind = models.CharField(max_length=20, choices=JobKind.choices)
    slide = models.ForeignKey(Slide, on_delete=models.CASCADE, related_name="agreement_jobs")
    stage = models.CharField(max_length=10, choices=Stage.choices)
    # The adjudication a fill job fills (None for a report job).
    adjudication = models.ForeignKey(
        Adjudication, null=True, blank=True, on_delete=models.CASCADE, related_name="jobs"
    )

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["slide", "stage", "kind"])]
        constraints = [
            models.UniqueConstraint(
                fields=["slide", "stage", "kind"],
                condition=models.Q(status__in=ACTIVE),
                name="one_active_agreement_job",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} job {self.pk} of slide {self.slide_id} {self.stage}: {self.status}"

"""Annotations: label schemas, annotation sets, polygons with history, tasks.

Every polygon belongs to an :class:`AnnotationSet` (one slide, one stage, one source), so
agreement compares two sets, export picks sets and a pipeline run writes a set. Geometry is a
GeoJSON Polygon in **level-0 slide px**; its XYXY bounding box is copied into indexed columns
so viewport queries never parse JSON.

Nothing here has behaviour beyond plain fields: writes go through ``services``, reads that
respect blinding through ``selectors``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.accounts.models import Project
from apps.slides.models import Slide


class Stage(models.TextChoices):
    ROI = "roi", "Region of interest"
    TOI = "toi", "Tiles of interest"
    CELL = "cell", "Cells"


class SetSource(models.TextChoices):
    ANNOTATOR = "annotator", "An annotator"
    CONSENSUS = "consensus", "Consensus of annotators"
    MODEL_RUN = "model_run", "A pipeline run"
    # A report's copy of a run's cells, corrected in its review (apps.reports): it belongs to
    # the report, so the workspace leaves it out and only the report's review edits it.
    REPORT_REVIEW = "report_review", "A report's corrected copy of a pipeline run"


#: Sets a pipeline wrote (or a report copied from one): their cells may carry a classifier's
#: own labels, such as ml.classes.ERYTHROBLAST_UNSTAGED, besides the project's classes.
MACHINE_SOURCES = frozenset({SetSource.MODEL_RUN, SetSource.REPORT_REVIEW})


class TileLabel(models.TextChoices):
    TOI = "toi", "Tile of interest"
    NON_TOI = "non_toi", "Not a tile of interest"


class LabelClass(models.Model):
    """One class of a project's cell label schema. ``key`` is stable: a rename changes ``name``."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="label_classes")
    key = models.SlugField(max_length=64)
    name = models.CharField(max_length=200)
    counted = models.BooleanField(default=True)
    colour = models.CharField(max_length=7)
    hotkey = models.CharField(max_length=1)
    order = models.IntegerField(default=0)
    # A class in use is retired, never deleted: stored labels keep pointing at a known key.
    retired = models.BooleanField(default=False)

    class Meta:
        ordering = ["project_id", "order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "key"], name="label_key_unique_in_project"),
            models.UniqueConstraint(
                fields=["project", "hotkey"],
                condition=Q(retired=False),
                name="label_hotkey_unique_among_active",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.key})"


class AnnotationSet(models.Model):
    slide = models.ForeignKey(Slide, on_delete=models.CASCADE, related_name="annotation_sets")
    stage = models.CharField(max_length=10, choices=Stage.choices)
    source = models.CharField(max_length=20, choices=SetSource.choices, default=SetSource.ANNOTATOR)
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="annotation_sets",
    )
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slide_id", "stage", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["slide", "stage", "source", "annotator"],
                condition=Q(source="annotator"),
                name="one_annotator_set_per_slide_stage",
            ),
            models.CheckConstraint(
                condition=~Q(source="annotator") | Q(annotator__isnull=False),
                name="annotator_set_has_annotator",
            ),
        ]

    def __str__(self) -> str:
        who = self.annotator or self.source
        return f"{self.stage} set of {who} on slide {self.slide_id}"


class Annotation(models.Model):
    """A polygon in level-0 slide px with a label; versioned, soft-deleted."""

    # No index of its own: the composite index below starts with ``set``.
    set = models.ForeignKey(
        AnnotationSet, on_delete=models.CASCADE, related_name="annotations", db_index=False
    )
    geometry = models.JSONField()
    # LabelClass.key for cells ("" = not classified yet), "toi"/"non_toi" for tiles, "" for ROI.
    label = models.CharField(max_length=64, blank=True, default="")
    tile_col = models.IntegerField(null=True, blank=True)
    tile_row = models.IntegerField(null=True, blank=True)
    min_x = models.FloatField()
    min_y = models.FloatField()
    max_x = models.FloatField()
    max_y = models.FloatField()
    area_px = models.FloatField()
    probabilities = models.JSONField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    is_deleted = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,  # only read when a user is deleted
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        # One index: it serves every read by set (lists, viewport boxes, gallery filters),
        # and each extra index is paid on every row of a 5,000-cell bulk save.
        indexes = [models.Index(fields=["set", "min_x", "min_y"], name="annotation_set_bbox")]

    def __str__(self) -> str:
        return f"annotation {self.pk} v{self.version} ({self.label or 'unlabelled'})"


class EventAction(models.TextChoices):
    CREATE = "create", "Created"
    UPDATE = "update", "Updated"
    DELETE = "delete", "Deleted"
    RESTORE = "restore", "Restored"
    CONFLICT = "conflict", "Rejected stale edit"


class AnnotationEvent(models.Model):
    """One change of an annotation, or one rejected stale attempt (``conflict``).

    ``before``/``after`` hold the editable state (geometry, label, tile, is_deleted); for a
    conflict, ``before`` is the state the server held and ``after`` what the client sent.
    ``version`` is the version after the change (for a conflict: the version the client sent).
    """

    annotation = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="events")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,  # only read when a user is deleted
    )
    at = models.DateTimeField(auto_now_add=True)
    action = models.CharField(max_length=10, choices=EventAction.choices)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    version = models.PositiveIntegerField()

    class Meta:
        ordering = ["annotation_id", "id"]

    def __str__(self) -> str:
        return f"{self.action} of annotation {self.annotation_id} by {self.user}"


class TaskState(models.TextChoices):
    ASSIGNED = "assigned", "Assigned"
    IN_PROGRESS = "in_progress", "In progress"
    SUBMITTED = "submitted", "Submitted"


class Task(models.Model):
    """An annotator's assignment to one (slide, stage)."""

    slide = models.ForeignKey(Slide, on_delete=models.CASCADE, related_name="annotation_tasks")
    stage = models.CharField(max_length=10, choices=Stage.choices)
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="annotation_tasks"
    )
    state = models.CharField(
        max_length=20, choices=TaskState.choices, default=TaskState.ASSIGNED, db_index=True
    )
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    assigned_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["slide_id", "stage", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["slide", "stage", "annotator"], name="one_task_per_annotator_slide_stage"
            )
        ]

    def __str__(self) -> str:
        return f"{self.stage} of slide {self.slide_id} for {self.annotator} ({self.state})"


class TaskEvent(models.Model):
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="events")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(auto_now_add=True)
    action = models.CharField(max_length=20)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["task_id", "id"]

    def __str__(self) -> str:
        return f"{self.action} of task {self.task_id} by {self.user}"

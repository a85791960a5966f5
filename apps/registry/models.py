"""Model versions per project and task, their audit log, and the training jobs that make them.

A :class:`ModelVersion` is one registered model card: its weights live, write-once, in the
content-addressed store under ``MODEL_DIR`` (:mod:`apps.registry.store`), so activating,
rolling back or registering again never overwrites a file a run has used (MONAI Label keeps one
model file and overwrites it). At most one version per (project, task) is active, a rule the
database holds with a partial unique index; the services keep it at exactly one once a task has
an active version. Every registration, activation and rollback writes a
:class:`RegistryAuditEntry`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.accounts.models import Project
from apps.core.jobs import Job
from ml.cards import TASKS


class Task(models.TextChoices):
    ROI = "roi", "ROI"
    TOI = "toi", "TOI"
    CELL_SEGMENTATION = "cell_segmentation", "Cell segmentation"
    CELL_CLASSIFICATION = "cell_classification", "Cell classification"


assert tuple(Task.values) == TASKS  # the card schema's tasks are the registry's tasks


class Origin(models.TextChoices):
    INSTALLED = "installed", "Installed in MODEL_DIR"
    FOLDER = "folder", "Registered from a card folder"
    UPLOAD = "upload", "Uploaded"
    TRAINING = "training", "Trained in the app"


class ModelVersion(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="model_versions")
    task = models.CharField(max_length=20, choices=Task.choices)
    version = models.PositiveIntegerField()  # 1, 2, ... per (project, task)
    name = models.CharField(max_length=200)
    # The card as stored (``weights`` names the stored file, ``weights_sha256`` is always set).
    card = models.JSONField()
    # Relative to MODEL_DIR: the stored card and weights (write-once, content-addressed).
    card_file = models.CharField(max_length=300)
    weights_file = models.CharField(max_length=300)
    weights_sha256 = models.CharField(max_length=64)
    weights_bytes = models.BigIntegerField()
    metrics = models.JSONField(default=dict, blank=True)
    # ``(C, C)`` counts in ``card["classes"]`` order (rows true), when the card has one.
    confusion_matrix = models.JSONField(null=True, blank=True)
    # The training export's manifest.json when trained from an export, else null.
    manifest = models.JSONField(null=True, blank=True)
    origin = models.CharField(max_length=10, choices=Origin.choices)
    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    registered_at = models.DateTimeField(auto_now_add=True)
    is_active = models.BooleanField(default=False)

    class Meta:
        ordering = ["project_id", "task", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "task", "version"], name="one_version_number_per_task"
            ),
            models.UniqueConstraint(
                fields=["project", "task"],
                condition=Q(is_active=True),
                name="at_most_one_active_version_per_task",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task} v{self.version} ({self.name}) of project {self.project_id}"

    def record(self) -> dict[str, object]:
        """What an analysis run records about the version it used."""
        return {
            "version_id": self.pk,
            "version": self.version,
            "name": self.name,
            "weights_sha256": self.weights_sha256,
        }


class AuditAction(models.TextChoices):
    REGISTERED = "registered", "Registered"
    ACTIVATED = "activated", "Activated"
    ROLLED_BACK = "rolled_back", "Rolled back"


class RegistryAuditEntry(models.Model):
    """Who did what to which version: ``from_version`` was active before, ``to_version`` after
    (for ``registered``, ``to_version`` is the new version and stays inactive unless activated)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    task = models.CharField(max_length=20, choices=Task.choices)
    action = models.CharField(max_length=12, choices=AuditAction.choices)
    from_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    to_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} {self.task} of project {self.project_id} at {self.at}"


class TrainingJob(Job):
    """Training one task's model on a finished export; ``options`` are the trainer's knobs."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="training_jobs")
    task = models.CharField(max_length=20, choices=Task.choices)
    export = models.ForeignKey(
        "exports.ExportJob", on_delete=models.PROTECT, related_name="training_jobs"
    )
    options = models.JSONField(default=dict, blank=True)
    result = models.OneToOneField(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="training"
    )

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"training {self.pk} of {self.task} ({self.status})"

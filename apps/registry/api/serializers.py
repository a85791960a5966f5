from __future__ import annotations

from typing import Any

from django.urls import reverse
from rest_framework import serializers

from ..models import ModelVersion, RegistryAuditEntry, Task


class ModelVersionSerializer(serializers.ModelSerializer):
    registered_by = serializers.CharField(
        source="registered_by.username", read_only=True, allow_null=True
    )

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "project",
            "task",
            "version",
            "name",
            "is_active",
            "origin",
            "weights_sha256",
            "weights_bytes",
            "registered_by",
            "registered_at",
        ]


class AuditEntrySerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username", read_only=True, allow_null=True)
    from_version = serializers.SerializerMethodField()
    to_version = serializers.SerializerMethodField()

    class Meta:
        model = RegistryAuditEntry
        fields = ["action", "from_version", "to_version", "user", "at"]

    def get_from_version(self, entry: RegistryAuditEntry) -> int | None:
        return entry.from_version.version if entry.from_version else None

    def get_to_version(self, entry: RegistryAuditEntry) -> int | None:
        return entry.to_version.version if entry.to_version else None


class ModelVersionDetailSerializer(ModelVersionSerializer):
    confusion_matrix_svg = serializers.SerializerMethodField()

    class Meta(ModelVersionSerializer.Meta):
        fields = [
            *ModelVersionSerializer.Meta.fields,
            "card",
            "metrics",
            "confusion_matrix",
            "confusion_matrix_svg",
            "manifest",
        ]

    def get_confusion_matrix_svg(self, version: ModelVersion) -> str | None:
        if not version.confusion_matrix:
            return None
        return reverse("model-version-confusion", args=[version.pk])


class RollbackSerializer(serializers.Serializer):
    project = serializers.IntegerField()
    task = serializers.ChoiceField(Task.choices)


class UploadSerializer(serializers.Serializer):
    project = serializers.IntegerField()
    card = serializers.FileField()
    weights = serializers.FileField()
    activate = serializers.BooleanField(default=False)


class TrainingRequestSerializer(serializers.Serializer):
    export = serializers.IntegerField()
    task = serializers.ChoiceField(Task.choices, default=Task.CELL_CLASSIFICATION)
    options = serializers.DictField(default=dict)

    def validate_options(self, value: dict[str, Any]) -> dict[str, Any]:
        return dict(value)


class TrainingJobSerializer(serializers.Serializer):
    """What :func:`apps.registry.training.training_json` answers (documents the schema)."""

    id = serializers.IntegerField(read_only=True)
    status = serializers.CharField(read_only=True)
    progress = serializers.IntegerField(read_only=True)
    total = serializers.IntegerField(read_only=True)
    message = serializers.CharField(read_only=True)
    error = serializers.CharField(read_only=True)
    created_at = serializers.CharField(read_only=True)
    started_at = serializers.CharField(read_only=True, allow_null=True)
    finished_at = serializers.CharField(read_only=True, allow_null=True)
    task = serializers.CharField(read_only=True)
    export = serializers.IntegerField(read_only=True)
    project = serializers.IntegerField(read_only=True)
    options = serializers.DictField(read_only=True)
    version = serializers.DictField(read_only=True, allow_null=True)

from __future__ import annotations

import math
from typing import Any

from rest_framework import serializers

from apps.annotations.models import Stage
from ml.datasets.export import FORMATS

from ..models import ExportJob, OutputKind


class SlideChoiceSerializer(serializers.Serializer):
    """One slide and its source set per stage: ``{"slide": 3, "sets": {"cell": 12}}``."""

    slide = serializers.IntegerField()
    sets = serializers.DictField(child=serializers.IntegerField(), allow_empty=True)

    def validate_sets(self, value: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(value) - set(Stage.values))
        if unknown:
            raise serializers.ValidationError(
                f"unknown stage(s) {', '.join(unknown)}; use {', '.join(Stage.values)}"
            )
        return value


class ExportRequestSerializer(serializers.Serializer):
    slides = SlideChoiceSerializer(many=True, allow_empty=True)
    formats = serializers.ListField(child=serializers.ChoiceField(FORMATS), allow_empty=True)
    seed = serializers.IntegerField(default=0)
    fractions = serializers.ListField(
        child=serializers.FloatField(min_value=0), min_length=3, max_length=3, required=False
    )
    class_keys = serializers.ListField(
        child=serializers.CharField(), required=False, allow_null=True, default=None
    )
    output = serializers.ChoiceField(OutputKind.choices, default=OutputKind.ZIP)

    def validate_fractions(self, value: list[float]) -> list[float]:
        if not math.isclose(sum(value), 1.0):
            raise serializers.ValidationError("train, val and test shares must sum to 1")
        return value


class ExportJobSerializer(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = ExportJob
        fields = [
            "id",
            "project",
            "requested_by",
            "status",
            "progress",
            "error",
            "selection",
            "output_name",
            "output_bytes",
            "download_url",
            "created_at",
            "started_at",
            "finished_at",
        ]

    def get_progress(self, job: ExportJob) -> dict[str, Any]:
        return {
            "done": job.progress_done,
            "total": job.progress_total,
            "message": job.progress_message,
        }

    def get_download_url(self, job: ExportJob) -> str | None:
        if job.status != "done" or not job.output_name.endswith(".zip"):
            return None
        return f"/api/exports/{job.pk}/download"

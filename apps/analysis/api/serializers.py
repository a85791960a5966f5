from __future__ import annotations

from rest_framework import serializers


class StartRunSerializer(serializers.Serializer):
    """``config``: overrides of :class:`ml.pipeline.PipelineConfig` (checked by the service)."""

    slide = serializers.IntegerField(min_value=1)
    config = serializers.JSONField(required=False, default=dict)


class RunSerializer(serializers.Serializer):
    """A run's state (:func:`apps.analysis.selectors.run_state`) and its record."""

    id = serializers.IntegerField()
    slide = serializers.IntegerField()
    status = serializers.CharField()
    error = serializers.CharField()
    stages = serializers.DictField()
    cells_found = serializers.IntegerField(allow_null=True)
    eta_s = serializers.FloatField(allow_null=True)
    timings = serializers.DictField()
    models = serializers.DictField()
    device = serializers.CharField()
    summary = serializers.DictField(allow_null=True)
    sets = serializers.DictField()
    config = serializers.DictField()
    overrides = serializers.DictField()
    slide_sha256 = serializers.CharField()
    software_version = serializers.CharField()
    created_by = serializers.CharField(allow_null=True)
    retry_of = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)

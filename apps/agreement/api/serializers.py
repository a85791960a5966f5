"""Input shapes of the agreement API (outputs are the presenters' JSON documents)."""

from __future__ import annotations

from rest_framework import serializers

from apps.agreement.models import Choice


class StartAdjudicationSerializer(serializers.Serializer):
    """Which two annotators to adjudicate; default: the first two by user id."""

    a = serializers.IntegerField(required=False)
    b = serializers.IntegerField(required=False)


class DecisionSerializer(serializers.Serializer):
    """A reviewer's choice for one disagreement.

    ``edit`` takes ``label`` (a cell class key, or ``toi``/``non_toi``), ``geometry`` (a GeoJSON
    Polygon in level-0 px; for an ROI also a MultiPolygon) or, for an ROI, ``combine``.
    """

    key = serializers.CharField(max_length=80)
    choice = serializers.ChoiceField(choices=Choice.choices)
    label = serializers.CharField(required=False, allow_blank=True, max_length=64)  # type: ignore[assignment]  # a field named "label" (the stubs see Field.label)
    geometry = serializers.JSONField(required=False)
    combine = serializers.ChoiceField(choices=["union", "intersection"], required=False)

from __future__ import annotations

import json

from rest_framework import serializers

from apps.annotations.models import (
    Annotation,
    AnnotationEvent,
    AnnotationSet,
    LabelClass,
    Stage,
    Task,
)
from apps.annotations.services import MAX_BULK_ITEMS


class LabelClassSerializer(serializers.ModelSerializer):
    class Meta:
        model = LabelClass
        fields = ["id", "key", "name", "counted", "colour", "hotkey", "order", "retired"]
        read_only_fields = ["id"]


class LabelClassUpdateSerializer(serializers.ModelSerializer):
    class Meta:
        model = LabelClass
        fields = ["name", "counted", "colour", "hotkey", "order", "retired"]
        extra_kwargs = {name: {"required": False} for name in fields}


class AnnotationSetSerializer(serializers.ModelSerializer):
    annotation_count = serializers.IntegerField(read_only=True)
    # null for the sets no person owns (model runs, consensus, a report's review copy).
    annotator_name = serializers.CharField(
        source="annotator.username", read_only=True, default=None, allow_null=True
    )

    class Meta:
        model = AnnotationSet
        fields = [
            "id",
            "slide",
            "stage",
            "source",
            "annotator",
            "annotator_name",
            "annotation_count",
            "note",
            "created_at",
        ]
        read_only_fields = fields


class AnnotationSetCreateSerializer(serializers.Serializer):
    slide = serializers.IntegerField()
    stage = serializers.ChoiceField(choices=Stage.choices)


class GeometryField(serializers.JSONField):
    """A GeoJSON Polygon in level-0 slide px: {"type": "Polygon", "coordinates": [[[x, y], ...]]}."""


class AnnotationSerializer(serializers.ModelSerializer):
    """The full annotation (201/200 bodies and the ``current`` of a 409)."""

    slide = serializers.IntegerField(source="set.slide_id", read_only=True)
    stage = serializers.CharField(source="set.stage", read_only=True)
    annotator = serializers.IntegerField(source="set.annotator_id", read_only=True)
    geometry = GeometryField()
    bbox = serializers.SerializerMethodField()

    class Meta:
        model = Annotation
        fields = [
            "id",
            "set",
            "slide",
            "stage",
            "annotator",
            "geometry",
            "label",
            "tile_col",
            "tile_row",
            "bbox",
            "area_px",
            "probabilities",
            "version",
            "is_deleted",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_bbox(self, annotation: Annotation) -> list[float]:
        """XYXY in level-0 px."""
        return [annotation.min_x, annotation.min_y, annotation.max_x, annotation.max_y]


class AnnotationCompactSerializer(serializers.Serializer):
    """Documentation of the viewer's list item (the list is built without serializers)."""

    id = serializers.IntegerField()
    set = serializers.IntegerField()
    geometry = GeometryField()
    label = serializers.CharField()  # type: ignore[assignment]  # a field named "label" (the stubs see Field.label)
    tile_col = serializers.IntegerField(allow_null=True)
    tile_row = serializers.IntegerField(allow_null=True)
    version = serializers.IntegerField()
    annotator = serializers.IntegerField(allow_null=True)


class AnnotationListQuerySerializer(serializers.Serializer):
    slide = serializers.IntegerField()
    stage = serializers.ChoiceField(choices=Stage.choices, required=False)
    set = serializers.IntegerField(required=False)
    label = serializers.CharField(required=False, allow_blank=True)  # type: ignore[assignment]  # a field named "label" (the stubs see Field.label)
    bbox = serializers.CharField(required=False, help_text="x0,y0,x1,y1 in level-0 px")

    def validate_bbox(self, value: str) -> tuple[float, float, float, float]:
        try:
            x0, y0, x1, y1 = (float(v) for v in value.split(","))
        except ValueError as exc:
            raise serializers.ValidationError("bbox is x0,y0,x1,y1 (four numbers)") from exc
        return x0, y0, x1, y1


class AnnotationItemSerializer(serializers.Serializer):
    geometry = GeometryField(required=False, help_text="omit for a TOI tile: the grid tile is used")
    label = serializers.CharField(required=False, allow_blank=True, default="")  # type: ignore[assignment]  # a field named "label" (the stubs see Field.label)
    tile_col = serializers.IntegerField(required=False, allow_null=True)
    tile_row = serializers.IntegerField(required=False, allow_null=True)
    probabilities = serializers.JSONField(required=False, allow_null=True)


class AnnotationCreateSerializer(AnnotationItemSerializer):
    set = serializers.IntegerField()


class AnnotationUpdateSerializer(serializers.Serializer):
    version = serializers.IntegerField(help_text="the version the edit is based on")
    geometry = GeometryField(required=False)
    label = serializers.CharField(required=False, allow_blank=True)  # type: ignore[assignment]  # a field named "label" (the stubs see Field.label)


class VersionSerializer(serializers.Serializer):
    version = serializers.IntegerField()


class BulkCreateSerializer(serializers.Serializer):
    set = serializers.IntegerField()
    # many=True makes a ListSerializer, which takes max_length (the stubs type the child).
    items = AnnotationItemSerializer(many=True, max_length=MAX_BULK_ITEMS)  # type: ignore[call-arg]


class BulkErrorSerializer(serializers.Serializer):
    """A 400: ``errors`` lists the invalid items; a malformed request answers field errors."""

    detail = serializers.CharField(required=False)
    errors = serializers.ListField(child=serializers.DictField(), required=False)  # type: ignore[assignment]  # a field named "errors"


class ConflictSerializer(serializers.Serializer):
    detail = serializers.CharField()
    current = AnnotationSerializer()


class AnnotationEventSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True, default=None)

    class Meta:
        model = AnnotationEvent
        fields = ["id", "action", "user", "username", "at", "version", "before", "after"]
        read_only_fields = fields


class CropQuerySerializer(serializers.Serializer):
    size = serializers.IntegerField(min_value=16, max_value=512, default=128)


class TaskSerializer(serializers.ModelSerializer):
    """A task of a queryset passed through :func:`apps.annotations.selectors.with_blinded`."""

    annotator_name = serializers.CharField(source="annotator.username", read_only=True)
    blinded = serializers.BooleanField(
        read_only=True, help_text="whether the task's (slide, stage) is still blinded"
    )

    class Meta:
        model = Task
        fields = [
            "id",
            "slide",
            "stage",
            "annotator",
            "annotator_name",
            "state",
            "blinded",
            "assigned_by",
            "assigned_at",
            "started_at",
            "submitted_at",
        ]
        read_only_fields = fields


class TaskCreateSerializer(serializers.Serializer):
    slide = serializers.IntegerField()
    stage = serializers.ChoiceField(choices=Stage.choices)
    annotator = serializers.IntegerField()


class ReopenSerializer(serializers.Serializer):
    note = serializers.CharField(allow_blank=False)


class ImportSerializer(serializers.Serializer):
    file = serializers.FileField()
    format = serializers.ChoiceField(choices=["labelme", "geojson"])
    offset_x = serializers.FloatField(required=False, default=0.0)
    offset_y = serializers.FloatField(required=False, default=0.0)
    label_map = serializers.JSONField(required=False, default=dict)

    def validate_label_map(self, value):
        if isinstance(value, str):  # multipart sends it as text
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise serializers.ValidationError("label_map must be a JSON object") from exc
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise serializers.ValidationError("label_map must be {their_label: our_key}")
        return value


class ExportQuerySerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=["geojson", "labelme"], default="geojson")


class ToiTileSerializer(serializers.Serializer):
    col = serializers.IntegerField()
    row = serializers.IntegerField()
    x = serializers.IntegerField()
    y = serializers.IntegerField()
    w = serializers.IntegerField()
    h = serializers.IntegerField()
    size = serializers.IntegerField()
    label = serializers.CharField(allow_null=True)  # type: ignore[assignment]  # a field named "label" (the stubs see Field.label)
    annotation_id = serializers.IntegerField(allow_null=True)
    version = serializers.IntegerField(allow_null=True)


class ToiCountsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    toi = serializers.IntegerField()
    non_toi = serializers.IntegerField()
    unlabelled = serializers.IntegerField()


class ToiGridSerializer(serializers.Serializer):
    tile_size = serializers.IntegerField()
    set = serializers.IntegerField(allow_null=True)
    restricted_to_roi = serializers.BooleanField()
    tiles = ToiTileSerializer(many=True)
    counts = ToiCountsSerializer()


class SamClickSerializer(serializers.Serializer):
    x = serializers.FloatField(help_text="level-0 px")
    y = serializers.FloatField(help_text="level-0 px")


class SamProposalSerializer(serializers.Serializer):
    polygon = GeometryField()
    score = serializers.FloatField()
    cached = serializers.BooleanField()


class SamStatusSerializer(serializers.Serializer):
    installed = serializers.BooleanField()
    model = serializers.CharField(allow_null=True)
    detail = serializers.CharField(required=False)

from rest_framework import serializers

from apps.slides.models import Slide


class SlideSerializer(serializers.ModelSerializer):
    has_scale = serializers.BooleanField(read_only=True)
    dzi_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()

    class Meta:
        model = Slide
        fields = [
            "id",
            "project",
            "name",
            "original_filename",
            "sha256",
            "file_size",
            "source",
            "status",
            "error",
            "vendor",
            "width",
            "height",
            "levels",
            "mpp_x",
            "mpp_y",
            "has_scale",
            "objective_power",
            "associated_images",
            "converted_from_flat",
            "created_at",
            "ingested_at",
            "dzi_url",
            "thumbnail_url",
        ]
        read_only_fields = fields

    def get_dzi_url(self, slide: Slide) -> str | None:
        return f"/slides/{slide.pk}.dzi" if slide.status == "ready" else None

    def get_thumbnail_url(self, slide: Slide) -> str | None:
        return f"/api/slides/{slide.pk}/thumbnail/" if slide.status == "ready" else None


class SlideUploadSerializer(serializers.Serializer):
    file = serializers.FileField()
    project = serializers.IntegerField()
    name = serializers.CharField(required=False, allow_blank=True, max_length=255)


class ThumbnailQuerySerializer(serializers.Serializer):
    max_size = serializers.IntegerField(min_value=16, max_value=4096, default=512)
    format = serializers.ChoiceField(choices=["jpeg", "png"], default="jpeg")

"""Slide reads that are more than a queryset filter: thumbnails and associated images."""

from __future__ import annotations

import io

from django.core.cache import cache
from PIL import Image

from ml.slide import SlideReadError

from .deepzoom import TileReadError, handles
from .models import Slide


def thumbnail_bytes(slide: Slide, *, max_size: int, fmt: str = "jpeg") -> bytes:
    """An encoded thumbnail fitted in ``max_size``; read from the nearest pyramid level."""
    key = f"thumb:{slide.sha256}:{max_size}:{fmt}"
    data = cache.get(key)
    if data is None:
        reader = handles.get(slide.viewable_file).reader
        try:
            array = reader.thumbnail(max_size)
        except SlideReadError as exc:
            raise TileReadError(exc.message) from exc
        data = _encode(Image.fromarray(array), fmt)
        cache.set(key, data, 3600)
    return data


def associated_image_bytes(slide: Slide, name: str) -> bytes:
    """An associated image (label, macro, thumbnail) as JPEG; KeyError when absent."""
    if name not in slide.associated_images:
        raise KeyError(name)
    reader = handles.get(slide.viewable_file).reader
    return _encode(reader.associated_image(name), "jpeg")


def _encode(image: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    if fmt == "png":
        image.save(buf, "PNG")
    else:
        image.convert("RGB").save(buf, "JPEG", quality=85)
    return buf.getvalue()

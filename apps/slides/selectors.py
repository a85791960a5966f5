"""Slide reads that are more than a queryset filter: who may see a slide, thumbnails, images.

"The visible slide or 404" lives here once, for pages, APIs and the tile fast path alike:
:func:`visible_slide_or_404` and its async twin :func:`avisible_slide_or_404`.
"""

from __future__ import annotations

import io

from django.core.cache import cache
from django.http import Http404
from PIL import Image

from ml.slide import SlideReadError

from .deepzoom import TileReadError, handles
from .models import Slide, SlideQuerySet, SlideStatus


def visible_slides(user) -> SlideQuerySet:
    """The slides ``user`` may see: those of the projects they are a member of (none when
    anonymous). Every slide lookup on behalf of a user starts here."""
    return Slide.objects.visible_to(user)


def visible_slide_or_404(user, slide_id: int, *, ready: bool = False) -> Slide:
    """The slide ``slide_id`` (with its project) if ``user`` may see it, else Http404.

    With ``ready``, a slide that is not ingested (pending or failed) is a 404 too, whose
    message says why; only a member ever learns that the slide exists.
    """
    return _checked(_lookup(user, slide_id).first(), ready=ready)


async def avisible_slide_or_404(user, slide_id: int, *, ready: bool = False) -> Slide:
    """:func:`visible_slide_or_404` through Django's async ORM, for async views and ASGI."""
    return _checked(await _lookup(user, slide_id).afirst(), ready=ready)


def _lookup(user, slide_id: int) -> SlideQuerySet:
    return visible_slides(user).select_related("project").filter(pk=slide_id)


def _checked(slide: Slide | None, *, ready: bool) -> Slide:
    if slide is None:
        raise Http404("No such slide.")
    if ready and slide.status != SlideStatus.READY:
        raise Http404(f"The slide is {slide.status}: {slide.error or 'not ingested yet'}.")
    return slide


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

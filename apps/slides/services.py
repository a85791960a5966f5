"""Slide writes: taking files in (upload, register) and ingesting them (pending -> ready|failed)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import Project
from ml.pyramid import FLAT_LOADERS, FlatImageError, convert_flat_image, flat_image_loader
from ml.slide import VENDOR_SUFFIXES, SlideOpenError, SlideReader, SlideReadError

from . import storage
from .errors import NotAFile, OutsideImportRoots, SlideError, UnsafeFilename, UploadTooLarge
from .models import Slide, SlideSource, SlideStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Intake:
    """The result of taking a file in: the slide row and whether it was already there."""

    slide: Slide
    created: bool


def _create_or_find(
    *,
    project: Project,
    sha256: str,
    file_path: str,
    size: int,
    filename: str,
    name: str,
    source: str,
    user,
) -> Intake:
    existing = Slide.objects.filter(project=project, sha256=sha256).first()
    if existing:
        return Intake(existing, created=False)
    try:
        with transaction.atomic():
            slide = Slide.objects.create(
                project=project,
                sha256=sha256,
                file_path=file_path,
                file_size=size,
                original_filename=filename,
                name=name or Path(filename).stem,
                source=source,
                created_by=user,
            )
    except IntegrityError:
        # Two identical uploads raced; the other one won and this is its duplicate.
        return Intake(Slide.objects.get(project=project, sha256=sha256), created=False)
    return Intake(slide, created=True)


def take_in_upload(
    *, project: Project, chunks: Iterable[bytes], filename: str, user, name: str = ""
) -> Intake:
    """Store an uploaded file (streamed in chunks) and register it as a pending slide."""
    if not storage.is_plain_name(filename):
        raise UnsafeFilename(f"the file name {filename!r} must not contain a folder or '..'")
    try:
        with storage.disk_full_as_error():
            sha, relative, size = storage.store_chunks(
                chunks, filename, max_bytes=settings.SLIDE_UPLOAD_MAX_BYTES
            )
    except ValueError as exc:
        raise UploadTooLarge(str(exc)) from exc
    intake = _create_or_find(
        project=project,
        sha256=sha,
        file_path=str(relative),
        size=size,
        filename=filename,
        name=name,
        source=SlideSource.UPLOAD,
        user=user,
    )
    if intake.created:
        schedule_ingest(intake.slide.pk)
    return intake


def register_path(
    *,
    project: Project,
    path: Path,
    user=None,
    copy: bool = False,
    name: str = "",
    source: str = SlideSource.REGISTER,
    progress: Callable[[int], None] | None = None,
) -> Intake:
    """Register a file already on the server's disk.

    By default the file stays where it is (multi-file formats such as MIRAX need their sidecar
    folder, and labs do not want a second copy of a 40 GB slide); ``copy`` puts a copy into the
    content-addressed store instead.
    """
    named = path.expanduser()
    path = named.resolve()  # a symlink is judged by where it points
    if not any(path.is_relative_to(root) for root in settings.SLIDE_IMPORT_ROOTS):
        roots = ", ".join(str(r) for r in settings.SLIDE_IMPORT_ROOTS)
        raise OutsideImportRoots(
            f"{named} is outside the folders slides may be registered from ({roots}); "
            "set SLIDE_IMPORT_ROOTS to add one"
        )
    if not path.is_file():
        raise NotAFile(f"{path} is not a file")
    sha = storage.hash_file(path, progress)
    file_path = str(storage.copy_into_storage(path, sha)) if copy else str(path)
    intake = _create_or_find(
        project=project,
        sha256=sha,
        file_path=file_path,
        size=path.stat().st_size,
        filename=path.name,
        name=name,
        source=source,
        user=user,
    )
    if intake.created:
        schedule_ingest(intake.slide.pk)
    return intake


def schedule_ingest(slide_id: int) -> None:
    """Queue the ingest after the surrounding transaction commits (the worker must see the row)."""
    from django_q.tasks import async_task

    transaction.on_commit(
        lambda: async_task(
            "apps.slides.tasks.ingest_slide", slide_id, task_name=f"ingest-{slide_id}"
        )
    )


def requeue_lost_ingests() -> int:
    """Queue again the ingests no worker took within ``SLIDE_INGEST_REQUEUE_S``; how many.

    A pending slide nobody claimed that long after it was registered lost its queue entry (the
    broker restarted without persistence, or a killed worker had fetched it ahead). Runs every
    minute (a django-q2 schedule); :func:`_claim` is conditional, so an ingest queued twice
    still runs once.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.SLIDE_INGEST_REQUEUE_S)
    lost = Slide.objects.filter(
        status=SlideStatus.PENDING, ingest_started_at__isnull=True, created_at__lt=cutoff
    ).values_list("pk", flat=True)
    ids = list(lost)
    for slide_id in ids:
        schedule_ingest(slide_id)
    return len(ids)


def _claim(slide_id: int) -> Slide | None:
    claimed = Slide.objects.filter(
        pk=slide_id, status=SlideStatus.PENDING, ingest_started_at__isnull=True
    ).update(ingest_started_at=timezone.now())
    return Slide.objects.get(pk=slide_id) if claimed else None


def ingest(slide_id: int) -> Slide | None:
    """Read a pending slide's metadata and make it viewable. Returns None if already claimed.

    Any failure is recorded on the row as a message a person understands; the traceback goes to
    the log. A flat image is converted once to a pyramidal TIFF beside the original.
    """
    slide = _claim(slide_id)
    if slide is None:
        return None
    try:
        fields = _read_metadata(slide)
    except SlideError as exc:
        log.warning("slide %s failed ingest: %s", slide_id, exc.message)
        Slide.objects.filter(pk=slide_id).update(
            status=SlideStatus.FAILED, error=exc.message, ingested_at=timezone.now()
        )
    except Exception as exc:
        log.exception("slide %s: unexpected ingest error", slide_id)
        Slide.objects.filter(pk=slide_id).update(
            status=SlideStatus.FAILED,
            error=f"unexpected error while reading the slide: {exc}",
            ingested_at=timezone.now(),
        )
    else:
        Slide.objects.filter(pk=slide_id).update(
            status=SlideStatus.READY, error="", ingested_at=timezone.now(), **fields
        )
    slide.refresh_from_db()
    return slide


def retry_ingest(*, slide: Slide) -> None:
    """Put a failed slide back in the queue (for example after the file was replaced)."""
    Slide.objects.filter(pk=slide.pk).update(
        status=SlideStatus.PENDING, error="", ingest_started_at=None
    )
    schedule_ingest(slide.pk)


def _open_viewable(slide: Slide) -> tuple[SlideReader, dict]:
    source = slide.stored_file
    if not source.exists():
        raise SlideError("the slide file is missing from the server's disk")
    try:
        return SlideReader(source), {"view_path": "", "converted_from_flat": False}
    except SlideOpenError as exc:
        openslide_message = exc.message
    suffix = Path(slide.original_filename).suffix.lower()
    if suffix in VENDOR_SUFFIXES:
        # A vendor suffix promises a whole-slide file; a photo renamed .svs is refused, not
        # converted, so what the lab named a scan is what it gets.
        raise SlideError(
            f"{openslide_message} (a {suffix} file must be a whole-slide image, "
            "and this one is not)"
        )
    loader = flat_image_loader(source)
    if loader not in FLAT_LOADERS:
        raise SlideError(openslide_message)
    relative = storage.derived_path(slide.sha256, "pyramid.tiff")
    target = storage.writable_target(relative)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        if not target.exists():
            convert_flat_image(source, target)
        reader = SlideReader(target)
    except (FlatImageError, SlideOpenError) as exc:
        # A TIFF that neither OpenSlide nor libvips decodes: OpenSlide's reason is the useful one.
        raise SlideError(openslide_message if loader == "tiffload" else exc.message) from exc
    return reader, {"view_path": str(relative), "converted_from_flat": True}


def _read_metadata(slide: Slide) -> dict:
    reader, fields = _open_viewable(slide)
    with reader:
        try:
            # Decoding the coarsest level proves the pixels are readable, not just the header.
            reader.thumbnail(256)
        except SlideReadError as exc:
            raise SlideError(exc.message) from exc
        mpp_x, mpp_y = reader.mpp
        width, height = reader.dimensions
        return fields | {
            "vendor": reader.vendor or ("libvips" if fields["converted_from_flat"] else ""),
            "width": width,
            "height": height,
            "levels": [
                {"width": lv.width, "height": lv.height, "downsample": lv.downsample}
                for lv in reader.levels
            ],
            "mpp_x": mpp_x,
            "mpp_y": mpp_y,
            "objective_power": reader.objective_power,
            "associated_images": reader.associated_image_names,
            "properties": {k: v[:2000] for k, v in reader.properties.items()},
        }

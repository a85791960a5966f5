"""Export writes: validate a request into a queued job, and run a job to its end.

:func:`request_export` checks everything a person can get wrong before anything is queued:
slides and sets they cannot see are 404 (a set still blinded to them included, through
``visible_sets``), a selection with nothing in it is 400, a class map that leaves out labels
the chosen cells carry is 400 with the labels listed, and a non-admin is 403.
:func:`run_export` claims the row, writes through :mod:`ml.datasets.export` into
``<EXPORT_DIR>/export-<id>.zip`` (or a folder), records progress on the row, and on any failure
(a full disk included) records the reason and leaves no partial output.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, cast

from django.db import transaction
from django.http import Http404
from django.utils import timezone

from apps.accounts import roles
from apps.annotations.models import LabelClass, Stage
from apps.annotations.selectors import visible_sets
from apps.slides.selectors import visible_slide_or_404
from ml.datasets.export import (
    ClassInfo,
    ExportError,
    ExportOptions,
    FolderSink,
    ZipFileSink,
    write_export,
)
from ml.slide import SlideOpenError, SlideReadError

from . import selectors
from .errors import EmptySelection, ExportRequestError, LabelsNotCovered, NotAllowed
from .models import ExportJob, JobStatus, OutputKind

log = logging.getLogger(__name__)


@transaction.atomic
def request_export(*, user: Any, selection: Mapping[str, Any]) -> ExportJob:
    """A queued :class:`ExportJob` for a parsed ``selection`` (see ``api.serializers``).

    ``selection``: ``slides`` ``[{"slide": id, "sets": {stage: set id}}]``, ``formats``,
    ``seed``, ``fractions``, ``class_keys`` (None: the project's whole label schema) and
    ``output`` (``zip`` | ``folder``). Raises Http404, :class:`EmptySelection`,
    :class:`LabelsNotCovered` or :class:`NotAllowed`; nothing is stored then.
    """
    chosen = [s for s in selection.get("slides") or [] if s.get("sets")]
    if not chosen:
        raise EmptySelection("choose at least one slide with at least one source set")
    if not selection.get("formats"):
        raise EmptySelection("choose at least one format")
    slides = [visible_slide_or_404(user, s["slide"], ready=True) for s in chosen]
    projects = {slide.project_id for slide in slides}
    if len(projects) != 1:
        raise ExportRequestError("an export draws on the slides of one project")
    (project_id,) = projects
    if len({slide.pk for slide in slides}) != len(slides):
        raise ExportRequestError("a slide is chosen twice")
    _check_sets(user, chosen)
    if not roles.is_admin(user, project_id):
        raise NotAllowed("only a project admin may export training data")
    class_map = class_map_of(project_id, selection.get("class_keys"))
    cell_sets = [s["sets"][Stage.CELL] for s in chosen if Stage.CELL in s["sets"]]
    missing = sorted(selectors.used_labels(cell_sets) - set(class_map))
    if missing:
        raise LabelsNotCovered(missing)
    job = ExportJob.objects.create(
        project_id=project_id, requested_by=user, selection=_stored(selection, chosen)
    )
    schedule_export(job.pk)
    return job


def _check_sets(user: Any, chosen: Sequence[Mapping[str, Any]]) -> None:
    """Every chosen set exists, is visible to ``user``, and is of its slide and stage."""
    visible = visible_sets(user)
    wanted = {(s["slide"], stage, set_id) for s in chosen for stage, set_id in s["sets"].items()}
    found = set(
        visible.filter(pk__in=[w[2] for w in wanted]).values_list("slide_id", "stage", "pk")
    )
    for slide_id, stage, set_id in sorted(wanted - found):
        raise Http404(f"No {stage} annotation set {set_id} on slide {slide_id}.")


def class_map_of(project_id: int, keys: Sequence[str] | None) -> dict[str, ClassInfo]:
    """The project's classes (schema order) as the export's class map; ``keys`` picks some.

    Keys outside the schema are a 400 naming them.
    """
    rows = LabelClass.objects.filter(project_id=project_id).values_list("key", "name", "colour")
    schema = {key: ClassInfo(key, name, colour) for key, name, colour in rows}
    if keys is None:
        return schema
    unknown = sorted(set(keys) - set(schema))
    if unknown:
        raise ExportRequestError(
            f"class_keys names classes the project does not have: {', '.join(unknown)}",
            data={"class_keys": unknown},
        )
    return {key: info for key, info in schema.items() if key in set(keys)}


def _stored(selection: Mapping[str, Any], chosen: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {
        "slides": [{"slide": s["slide"], "sets": dict(s["sets"])} for s in chosen],
        "formats": list(selection["formats"]),
        "seed": int(selection.get("seed") or 0),
        "fractions": list(selection.get("fractions") or (0.7, 0.15, 0.15)),
        "class_keys": selection.get("class_keys"),
        "output": selection.get("output") or OutputKind.ZIP,
    }


def schedule_export(job_id: int) -> None:
    """Queue the job after the surrounding transaction commits (the worker must see the row)."""
    from django_q.tasks import async_task

    transaction.on_commit(
        lambda: async_task("apps.exports.tasks.run_export", job_id, task_name=f"export-{job_id}")
    )


# -- running -------------------------------------------------------------------------------
def open_output(path: Path, mode: str) -> BinaryIO:
    """Opens the partial ZIP file; the one seam the tests replace with a disk that fills up."""
    return cast(BinaryIO, open(path, mode))  # the sink closes it at commit or abort


def _claim(job_id: int) -> ExportJob | None:
    claimed = ExportJob.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=timezone.now()
    )
    return ExportJob.objects.select_related("project").get(pk=job_id) if claimed else None


def run_export(job_id: int) -> ExportJob | None:
    """Write a queued job's export; None if another worker claimed it first.

    The outcome is recorded on the row: ``done`` with the output's name, size and manifest, or
    ``failed`` with a reason a person understands (the traceback goes to the log).
    """
    job = _claim(job_id)
    if job is None:
        return None
    try:
        manifest, name, size = _write(job)
    except ExportError as exc:
        _fail(job, exc.message)
    except (SlideOpenError, SlideReadError) as exc:
        _fail(job, f"slide {exc.path} could not be read: {exc.message}")
    except OSError as exc:
        log.warning("export %s failed writing: %s", job_id, exc)
        reason = "the disk is full" if exc.errno == errno.ENOSPC else "a file could not be written"
        _fail(job, f"{reason}: {exc.strerror or exc}; the partial export was removed")
    except Exception as exc:
        log.exception("export %s: unexpected error", job_id)
        _fail(job, f"unexpected error while exporting: {exc}; the partial export was removed")
    else:
        ExportJob.objects.filter(pk=job_id).update(
            status=JobStatus.DONE,
            output_name=name,
            output_bytes=size,
            manifest=manifest,
            finished_at=timezone.now(),
        )
    job.refresh_from_db()
    return job


def _write(job: ExportJob) -> tuple[dict[str, Any], str, int]:
    selection = job.selection
    tile_size = job.project.toi_tile_size
    slides = []
    for item in selection["slides"]:
        slide = job.project.slides.get(pk=item["slide"])
        slides.append(selectors.slide_export(slide, item["sets"], tile_size=tile_size))
    folder = selection["output"] == OutputKind.FOLDER
    name = f"export-{job.pk}" if folder else f"export-{job.pk}.zip"
    target = selectors.export_dir() / name
    sink = FolderSink(target) if folder else ZipFileSink(target, opener=open_output)
    with sink:
        manifest = write_export(
            slides,
            formats=selection["formats"],
            sink=sink,
            class_map=class_map_of(job.project_id, selection.get("class_keys")),
            seed=selection["seed"],
            fractions=selection["fractions"],
            options=ExportOptions(tile_size=tile_size),
            progress=lambda done, total, message: _progress(job.pk, done, total, message),
        )
    size = target.stat().st_size if not folder else sum(r.bytes for r in sink.files.values())
    return manifest, name, size


def _progress(job_id: int, done: int, total: int, message: str) -> None:
    ExportJob.objects.filter(pk=job_id).update(
        progress_done=done, progress_total=total, progress_message=message[:300]
    )


def _fail(job: ExportJob, reason: str) -> None:
    ExportJob.objects.filter(pk=job.pk).update(
        status=JobStatus.FAILED, error=reason, finished_at=timezone.now()
    )

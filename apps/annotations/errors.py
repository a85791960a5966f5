"""Errors that carry what the caller needs. Each class's status code is in the one table of
:mod:`bmadcc_web.exception_handler`; ``data`` becomes the extra fields of the API body."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from apps.core.errors import AppError

if TYPE_CHECKING:
    from .models import Annotation


class AnnotationError(AppError):
    """Base class; ``message`` is shown to the user verbatim."""


class InvalidAnnotation(AnnotationError):
    """A geometry or label that cannot be stored (400)."""


class BulkInvalid(AnnotationError):
    """Some items of a bulk request are invalid; nothing was stored (400).

    ``errors`` is ``[{"index": i, "detail": reason}, ...]`` in item order.
    """

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(errors)} item(s) are invalid; nothing was saved", errors=errors)
        self.errors = errors


class StaleVersion(AnnotationError):
    """The client edited an old version (409); ``current`` is the annotation as stored."""

    def __init__(self, current: Annotation, sent_version: int) -> None:
        super().__init__(
            f"annotation {current.pk} is at version {current.version}, "
            f"the edit was based on version {sent_version}; reload it and try again",
            current=current,
        )
        self.current = current


class TileTaken(AnnotationError):
    """A TOI tile already has a live annotation in this set (409); ``current`` is it."""

    def __init__(self, current: Annotation) -> None:
        super().__init__(
            f"tile ({current.tile_col}, {current.tile_row}) already has annotation {current.pk}; "
            "change its label instead",
            current=current,
        )
        self.current = current


class NotAllowed(AnnotationError):
    """The user may see this but not change it (403)."""


class OwnedByReport(AnnotationError):
    """A report's review copy changes only through the report's review, never once signed (409).

    Its edits must leave review marks and audit entries, which only the report's services write.
    """


class LabelInUse(AnnotationError):
    """A label class used by stored annotations cannot be deleted (409)."""

    def __init__(self, key: str, count: int) -> None:
        super().__init__(
            f"class {key!r} is used by {count} annotation(s); retire it instead of deleting it",
            key=key,
            count=count,
        )
        self.key = key
        self.count = count


class TaskStateError(AnnotationError):
    """A task transition that its current state does not allow (409)."""


class ImportFailed(AnnotationError):
    """A file that cannot be imported; nothing was stored (400)."""


class InvalidLabelClass(AnnotationError):
    """A label class field that breaks the schema's rules (400)."""


class SamNotInstalled(AnnotationError):
    """No usable Segment Anything checkpoint (503); ``message`` tells an admin where to put one."""

    def __init__(self, message: str) -> None:
        super().__init__(message, installed=False, model=None)


class NothingFound(AnnotationError):
    """Segment Anything proposed no region at the click (422)."""

"""Errors that carry what a person needs to know, recorded on the slide row that failed.

Each class's status code is in the one table of :mod:`bmadcc_web.exception_handler`.
"""

from apps.core.errors import AppError


class SlideError(AppError):
    """A slide could not be taken in or read (422 in the API). ``message`` is shown to users
    verbatim and is what a failed ingest records on the slide row."""


class UploadTooLarge(SlideError):
    """The upload is over ``SLIDE_UPLOAD_MAX_BYTES`` (413); nothing was kept."""


class StorageFull(SlideError):
    """The slide store's disk filled up while a file was written (507); nothing was kept."""


class NotAFile(SlideError):
    """The path given to register is not a file on the server's disk (400)."""


class OutsideImportRoots(SlideError):
    """A file to register in place (or the target of its symlink) lies outside every folder
    of ``SLIDE_IMPORT_ROOTS`` (403)."""


class UnsafeFilename(SlideError):
    """An upload's file name carries a directory part (``../``, ``/``) (400)."""


class StoreWriteRefused(SlideError):
    """A write would land outside the slide store or over a file registered in place; the app
    never writes into a lab's own slide files (500: a bug, never a user's doing)."""

"""Registry errors: ``message`` for the user, ``data`` for the API body (codes in
``bmadcc_web.exception_handler``)."""

from __future__ import annotations

from apps.core.errors import AppError
from ml.cards import ModelCardError


class RegistryError(AppError):
    """A request the registry cannot carry out (400)."""


class InvalidCard(RegistryError):
    """A card or its weights failed ``ml.cards`` validation (400); ``data["field"]`` names it."""

    def __init__(self, exc: ModelCardError) -> None:
        super().__init__(f"field {exc.field!r}: {exc.message}", field=exc.field)


class NotAllowed(RegistryError):
    """A member who may read the registry but not change it (403)."""


class UploadTooLarge(RegistryError):
    """Uploaded weights over ``MODEL_UPLOAD_MAX_BYTES`` (413); nothing was kept."""


class NothingToRollBack(RegistryError):
    """No earlier active version to go back to (409)."""


class NotTrainable(RegistryError):
    """The export cannot train this task (not finished, or lacks the layout) (400)."""

"""Errors that carry what a person needs to know, recorded on the slide row that failed."""


class SlideError(Exception):
    """A slide could not be taken in or read. ``message`` is shown to users verbatim."""

    def __init__(self, message: str, *, permanent: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent


class UploadTooLarge(SlideError):
    pass


class NotAFile(SlideError):
    pass

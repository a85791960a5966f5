"""Content-addressed slide storage: every file lives under its SHA-256.

Layout: ``<SLIDE_STORAGE_DIR>/<sha[:2]>/<sha>/<original name>`` plus, for flat images, a
``pyramid.tiff`` beside it. Writes go to a temporary name and are renamed into place, so a
crash never leaves a half-written file under a real name.

Every write goes through :func:`writable_target`: the app writes only inside the store and
never over an existing file, so a slide registered in place (a lab's own file, or the shared
sample data) is never touched, whatever the settings or a symlink in the store say.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

from .errors import StorageFull, StoreWriteRefused
from .models import Slide

CHUNK = 8 * 1024 * 1024
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(filename: str) -> str:
    """A file name without directories or odd characters; never empty."""
    base = os.path.basename(filename.replace("\\", "/")).strip(". ")
    cleaned = _SAFE.sub("_", base)[:200]
    return cleaned or "slide"


def is_plain_name(filename: str) -> bool:
    """True when ``filename`` names a file only: no folder part, no ``..``, no NUL."""
    return not (set(filename) & {"/", "\\", "\0"}) and filename not in {"", ".", ".."}


def writable_target(relative: Path) -> Path:
    """The absolute path a write of ``relative`` (within the store) may create.

    Raises :class:`StoreWriteRefused` when it resolves outside the store (``..``, a symlink),
    lands on a file registered in place, or the store itself lies inside the shared sample
    data. An existing file is never overwritten: callers skip the write when it exists.
    """
    root = settings.SLIDE_STORAGE_DIR.resolve()
    target = (root / relative).resolve()
    if not target.is_relative_to(root) or target == root:
        raise StoreWriteRefused(f"refusing to write {relative}: it is outside the slide store")
    if root.is_relative_to(settings.SHARED_DATA_DIR.resolve()):
        raise StoreWriteRefused(f"refusing to write into the shared sample data ({root})")
    if Slide.objects.filter(file_path=str(target)).exists():
        raise StoreWriteRefused(f"refusing to write {target}: a slide is registered there")
    return target


def sha_dir(sha256: str) -> Path:
    return Path(sha256[:2]) / sha256


def hash_file(path: Path, progress: Callable[[int], None] | None = None) -> str:
    """SHA-256 of a file, read in chunks; ``progress`` receives the bytes read per chunk."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            if progress:
                progress(len(chunk))
    return digest.hexdigest()


@contextmanager
def disk_full_as_error(on_full: Callable[[], None] | None = None) -> Iterator[None]:
    """Turn "no space left on device" while writing into the store into :class:`StorageFull`.

    ``on_full`` removes what the failed writer leaves behind (:func:`store_chunks` removes its
    own); the user gets the reason instead of a 500. Any other ``OSError`` is a bug or a
    broken disk and propagates as it is.
    """
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        if on_full is not None:
            on_full()
        raise StorageFull(
            "the slide store's disk is full; nothing was kept. Free space (or ask an "
            "administrator to) and upload again"
        ) from exc


def receive_chunks(
    chunks: Iterable[bytes], root: Path, *, max_bytes: int, what: str = "the file"
) -> tuple[Path, str, int]:
    """Stream ``chunks`` into a new temporary file under ``root``, hashing as they come:
    (its path, sha256, size). The caller publishes or removes it.

    Raises ``ValueError`` once more than ``max_bytes`` arrive (0 = unlimited); nothing is kept.
    """
    root.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    fd, tmp_name = tempfile.mkstemp(prefix=".incoming-", dir=root)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                size += len(chunk)
                if max_bytes and size > max_bytes:
                    raise ValueError(f"{what} is larger than the {max_bytes:,} byte limit")
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp, digest.hexdigest(), size


def store_chunks(
    chunks: Iterable[bytes], filename: str, *, max_bytes: int
) -> tuple[str, Path, int]:
    """Stream ``chunks`` into storage. Returns (sha256, path relative to storage, size).

    Raises ``ValueError`` once more than ``max_bytes`` arrive (0 = unlimited); nothing is kept.
    """
    tmp, sha, size = receive_chunks(chunks, settings.SLIDE_STORAGE_DIR, max_bytes=max_bytes)
    try:
        relative = sha_dir(sha) / safe_name(filename)
        target = writable_target(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            tmp.unlink()
        else:
            os.replace(tmp, target)
        return sha, relative, size
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def copy_into_storage(source: Path, sha256: str) -> Path:
    """Copy an on-disk file into storage under its known hash; returns the relative path."""
    relative = sha_dir(sha256) / safe_name(source.name)
    target = writable_target(relative)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".incoming-{target.name}")
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    return relative


def derived_path(sha256: str, name: str) -> Path:
    """Where a file derived from the slide (its pyramid) lives, relative to storage."""
    return sha_dir(sha256) / name

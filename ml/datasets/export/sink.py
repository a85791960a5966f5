"""Where an export's files go: a folder, or a ZIP streamed into any writable byte stream.

A sink records the sha256 and size of every file it writes (the manifest lists them). Used as
a context manager it commits on success and aborts on any exception, so a failed export leaves
nothing that looks complete: :class:`FolderSink` and :class:`ZipFileSink` write under
``<name>.partial`` and rename at the end, and remove the partial output on failure (a full disk
included). Memory is bounded by the largest single file plus the ZIP's central directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, BinaryIO, cast

#: Suffix of an export that is still being written (or failed and is being removed).
PARTIAL = ".partial"
# Already-compressed payloads are stored; deflating them again only costs CPU.
_STORED_SUFFIXES = (".png", ".jpg", ".jpeg", ".zip")


@dataclass(frozen=True)
class FileRecord:
    """What the manifest says of one written file."""

    sha256: str
    bytes: int


class Sink:
    """Base class: checksums and the commit/abort protocol. Subclasses implement ``_open``."""

    def __init__(self) -> None:
        self.files: dict[str, FileRecord] = {}

    def write(self, name: str, data: bytes) -> None:
        """Write one whole file at the POSIX-style relative path ``name``."""
        with self.open(name) as out:
            out.write(data)

    @contextlib.contextmanager
    def open(self, name: str) -> Iterator[_Hashing]:
        """A writable for one file, written in pieces (for large JSON); hashed as it goes."""
        if name in self.files or name.startswith("/") or ".." in name.split("/"):
            raise ValueError(f"bad or repeated export path {name!r}")
        with self._open(name) as raw:
            hashing = _Hashing(raw)
            yield hashing
        self.files[name] = FileRecord(hashing.digest.hexdigest(), hashing.size)

    def _open(self, name: str) -> contextlib.AbstractContextManager[IO[bytes]]:
        raise NotImplementedError

    def commit(self) -> None:
        """Finish the output; only after this does it look complete."""

    def abort(self) -> None:
        """Remove whatever was written."""

    def __enter__(self) -> Sink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            try:
                self.commit()
            except BaseException:
                self.abort()
                raise
        else:
            self.abort()


class _Hashing:
    """A write-only wrapper that hashes and counts what passes through."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        self.raw.write(data)
        return len(data)


class FolderSink(Sink):
    """Files under ``root``; written into ``root.partial`` and renamed at commit.

    ``root`` must not exist yet (an export never overwrites another).
    """

    def __init__(self, root: str | Path) -> None:
        super().__init__()
        self.root = Path(root)
        if self.root.exists():
            raise FileExistsError(f"{self.root} already exists")
        self.partial = self.root.with_name(self.root.name + PARTIAL)
        shutil.rmtree(self.partial, ignore_errors=True)
        self.partial.mkdir(parents=True)

    def _open(self, name: str) -> contextlib.AbstractContextManager[IO[bytes]]:
        path = self.partial / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.open("wb")

    def commit(self) -> None:
        os.replace(self.partial, self.root)

    def abort(self) -> None:
        shutil.rmtree(self.partial, ignore_errors=True)


class ZipSink(Sink):
    """A ZIP written into ``stream`` as files arrive (seekable or not: a socket, a pipe).

    On a non-seekable stream zipfile writes data descriptors after each member, so the first
    bytes leave as soon as the first file is written. ``commit`` writes the central directory;
    the stream is the caller's to close.
    """

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__()
        self.zip = zipfile.ZipFile(stream, "w", allowZip64=True)

    def _open(self, name: str) -> contextlib.AbstractContextManager[IO[bytes]]:
        stored = name.lower().endswith(_STORED_SUFFIXES)
        info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
        return self.zip.open(info, "w", force_zip64=True)

    def commit(self) -> None:
        self.zip.close()

    def abort(self) -> None:
        # The stream may be broken (a full disk); closing must not hide the first error.
        with contextlib.suppress(OSError, ValueError):
            self.zip.close()


class ZipFileSink(ZipSink):
    """A ZIP file at ``path``: written as ``path.partial`` and renamed at commit.

    ``opener(path, mode)`` opens the partial file (the tests pass one that fills up).
    """

    def __init__(
        self, path: str | Path, *, opener: Callable[[Path, str], BinaryIO] | None = None
    ) -> None:
        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(f"{self.path} already exists")
        self.partial = self.path.with_name(self.path.name + PARTIAL)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.stream = (opener or _open_binary)(self.partial, "wb")
        super().__init__(self.stream)

    def commit(self) -> None:
        super().commit()
        self.stream.close()
        os.replace(self.partial, self.path)

    def abort(self) -> None:
        super().abort()
        with contextlib.suppress(OSError, ValueError):
            self.stream.close()
        with contextlib.suppress(FileNotFoundError):
            self.partial.unlink()


def _open_binary(path: Path, mode: str) -> BinaryIO:
    return cast(BinaryIO, open(path, mode))  # the sink closes it at commit or abort

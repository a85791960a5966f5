"""The registry's write-once, content-addressed store of weights and cards under ``MODEL_DIR``.

Layout: ``<MODEL_DIR>/registry/<sha[:2]>/<sha>/<weights file name>`` for the weights, and
``.../<sha>/card-<card sha[:16]>.json`` beside them for each card that points at them. A file is
placed with ``os.link`` from a finished temporary file, which fails rather than replace an
existing name, so a published file is never overwritten; the same bytes under the same name are
simply already there. ``discover_cards`` reads only top-level ``*.json`` in ``MODEL_DIR``, so
the store never looks like an installed card.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from apps.slides.storage import receive_chunks, safe_name, sha_dir

STORE_NAME = "registry"


def store_root() -> Path:
    return Path(settings.MODEL_DIR) / STORE_NAME


@dataclass(frozen=True)
class Staged:
    """Weights written to a temporary file of the store: hashed, sized, not yet published."""

    path: Path
    sha256: str
    size: int
    name: str

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


def stage_chunks(chunks: Iterable[bytes], filename: str, *, max_bytes: int) -> Staged:
    """Stream ``chunks`` into a temporary file of the store, hashing as they come.

    Raises ``ValueError`` once more than ``max_bytes`` arrive (0 = unlimited); nothing is kept.
    """
    tmp, sha, size = receive_chunks(chunks, store_root(), max_bytes=max_bytes, what="the weights")
    return Staged(tmp, sha, size, safe_name(filename))


def stage_file(source: Path) -> Staged:
    """A copy of ``source`` staged in the store (the original may be replaced later)."""
    with source.open("rb") as fh:
        return stage_chunks(iter(lambda: fh.read(1 << 20), b""), source.name, max_bytes=0)


def publish_weights(staged: Staged) -> Path:
    """Place staged weights at their content address; return the path relative to MODEL_DIR."""
    folder = store_root() / sha_dir(staged.sha256)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / staged.name
    _place(staged.path, target)
    return target.relative_to(settings.MODEL_DIR)


def publish_card(card: dict[str, Any], weights: Path) -> Path:
    """Write ``card`` beside its published ``weights`` (relative to MODEL_DIR), write-once."""
    body = json.dumps(card, indent=2, sort_keys=True).encode()
    folder = Path(settings.MODEL_DIR) / weights.parent
    target = folder / f"card-{hashlib.sha256(body).hexdigest()[:16]}.json"
    fd, tmp_name = tempfile.mkstemp(prefix=".incoming-", dir=folder)
    with os.fdopen(fd, "wb") as out:
        out.write(body)
    _place(Path(tmp_name), target)
    return target.relative_to(settings.MODEL_DIR)


def _place(tmp: Path, target: Path) -> None:
    """Publish ``tmp`` as ``target`` unless that name exists; ``tmp`` is gone afterwards."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        # Same address, so the same bytes (weights: same sha; card: same card sha) -- unless
        # someone edited the store by hand, which the sha256 check at load time catches.
        pass
    finally:
        tmp.unlink(missing_ok=True)

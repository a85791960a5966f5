"""Where the shared, read-only sample data lives: the one default for settings, tests and benches.

``bmadcc_web.settings`` (``SHARED_DATA_DIR``) calls :func:`shared_data_dir`; the Django-free
tests and benchmarks call it too, so ``BMADCC_SHARED_DATA`` moves all of them at once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

#: The environment variable that overrides the location.
SHARED_DATA_ENV = "BMADCC_SHARED_DATA"
#: ``<repo>/../shared/data``: sample slides (``slides/``) and smear photos (``smears/``).
DEFAULT_SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_data_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """The shared data root: ``$BMADCC_SHARED_DATA`` (``~`` expanded) or the default.

    The folder may be missing (a clean clone); callers decide whether that is an error.
    """
    raw = environ.get(SHARED_DATA_ENV)
    return Path(raw).expanduser().resolve() if raw else DEFAULT_SHARED_DATA

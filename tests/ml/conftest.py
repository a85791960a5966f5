"""Fixtures shared by the ``ml`` tests: paths to the real test data."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ml.data import BCCD_DIR, CHULA_DIR, SHARED_DATA


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data root; a missing checkout fails loudly rather than skipping tests."""
    assert SHARED_DATA.is_dir(), f"shared test data not found at {SHARED_DATA}"
    return SHARED_DATA


@pytest.fixture(scope="session")
def bccd_dir(shared_data: Path) -> Path:
    """The BCCD data set root (JPEGImages/, Annotations/)."""
    return BCCD_DIR


@pytest.fixture(scope="session")
def chula_dir(shared_data: Path) -> Path:
    """The Chula-RBC-12 data set root (Dataset/, Label/)."""
    return CHULA_DIR


@pytest.fixture(scope="session")
def bccd_export(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """A real export (ROI-SEG, TOI-CLS, CELL-SEG, CELL-CLS) of seven BCCD photos as slides, split
    5/1/1 by slide (:mod:`tests.ml.exports`); shared by the training tests."""
    from tests.ml.exports import write_bccd_export

    return write_bccd_export(tmp_path_factory.mktemp("bccd-export"), n=7)

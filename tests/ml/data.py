"""Where tests and benches find the shared, read-only test data (never copied into the repo)."""

from __future__ import annotations

from pathlib import Path

from ml.paths import shared_data_dir

#: ``$BMADCC_SHARED_DATA`` or ``<repo>/../shared/data``: real files written by nobody on this
#: project (the same folder as ``settings.SHARED_DATA_DIR``).
SHARED_DATA: Path = shared_data_dir()

#: BCCD peripheral-blood photos (640x480 JPEG) with Pascal VOC boxes for WBC / RBC / Platelets.
BCCD_DIR: Path = SHARED_DATA / "smears" / "BCCD"

#: Chula-RBC-12 red-cell smear photos (640x480) with one centre point per red cell.
CHULA_DIR: Path = SHARED_DATA / "smears" / "Chula-RBC-12"

#: Whole-slide files in vendor formats, plus broken ones.
SLIDES_DIR: Path = SHARED_DATA / "slides"

#: PBC: 2,750 expert-labelled peripheral-blood single-cell JPEGs, manifest.csv (CC BY 4.0).
PBC_DIR: Path = SHARED_DATA / "cells" / "PBC"

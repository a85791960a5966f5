"""The state an annotation's history events hold in ``before`` and ``after``."""

from __future__ import annotations

import json
from typing import Any

from .models import Annotation


def state_of(annotation: Annotation) -> dict[str, Any]:
    """The editable state: geometry (level-0 px), label, tile and deletion."""
    return {
        "geometry": annotation.geometry,
        "label": annotation.label,
        "tile_col": annotation.tile_col,
        "tile_row": annotation.tile_row,
        "is_deleted": annotation.is_deleted,
    }


def new_state_json(fields: dict[str, Any], geometry_json: str) -> str:
    """:func:`state_of` of a new annotation made of ``fields``, as JSON text.

    The geometry, already encoded as JSON, is spliced in rather than encoded a second time.
    """
    rest = json.dumps(
        {
            "label": fields["label"],
            "tile_col": fields["tile_col"],
            "tile_row": fields["tile_row"],
            "is_deleted": False,
        }
    )
    return '{"geometry": ' + geometry_json + ", " + rest[1:]

"""Writing thousands of new annotations, and their ``create`` events, in one go.

On PostgreSQL the rows stream in with COPY: ids are reserved from the table's sequence first,
so the events can point at their annotations, and each geometry is encoded to JSON once and
reused in its event. Django's ``bulk_create`` binds and quotes every value in Python and builds
a model instance per row, which costs seconds for 5,000 polygons of 60 vertices; it remains the
path for small batches and for other databases (SQLite in development).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from django.contrib.auth.models import User
from django.db import connection, models
from django.utils import timezone

from .history import new_state_json, state_of
from .models import Annotation, AnnotationEvent, AnnotationSet, EventAction

#: Below this many rows the ORM is as fast, and simpler.
COPY_MIN_ROWS = 200


def _encode(value: object) -> str:
    # Compact JSON (orjson writes no spaces): less text to encode here and to parse in PostgreSQL.
    return orjson.dumps(value).decode()


#: The validated fields :func:`insert_new` takes per row (a copy of a set carries these).
ROW_FIELDS = (
    "geometry",
    "label",
    "tile_col",
    "tile_row",
    "min_x",
    "min_y",
    "max_x",
    "max_y",
    "area_px",
    "probabilities",
)
_ANNOTATION_COLUMNS = (
    "id",
    "set",
    *ROW_FIELDS,
    "version",
    "is_deleted",
    "created_by",
    "created_at",
    "updated_at",
)
_EVENT_COLUMNS = ("annotation", "user", "at", "action", "before", "after", "version")


def insert_new(rows: Sequence[dict[str, Any]], *, aset: AnnotationSet, user: User) -> list[int]:
    """Insert new annotations (version 1) and one create event each; returns their ids.

    ``rows`` hold the validated model fields of :data:`ROW_FIELDS`. Must run inside the
    caller's transaction.
    """
    if connection.vendor == "postgresql" and len(rows) >= COPY_MIN_ROWS:
        return _copy_in(rows, aset, user)
    created = Annotation.objects.bulk_create(
        Annotation(set=aset, created_by=user, **fields) for fields in rows
    )
    AnnotationEvent.objects.bulk_create(
        AnnotationEvent(
            annotation=a, user=user, action=EventAction.CREATE, after=state_of(a), version=1
        )
        for a in created
    )
    return [a.pk for a in created]


def _copy_in(rows: Sequence[dict[str, Any]], aset: AnnotationSet, user: User) -> list[int]:
    now = timezone.now()
    # Read once: request.user is a lazy proxy, and each .pk through it costs a few microseconds.
    set_id, user_id = aset.pk, user.pk
    ids = _reserve_ids(len(rows))
    geometries = [_encode(r["geometry"]) for r in rows]
    with _copy(Annotation, _ANNOTATION_COLUMNS) as copy:
        for pk, r, geometry in zip(ids, rows, geometries, strict=True):
            copy.write_row(
                (
                    pk,
                    set_id,
                    geometry,
                    r["label"],
                    r["tile_col"],
                    r["tile_row"],
                    r["min_x"],
                    r["min_y"],
                    r["max_x"],
                    r["max_y"],
                    r["area_px"],
                    _json_or_none(r["probabilities"]),
                    1,
                    False,
                    user_id,
                    now,
                    now,
                )
            )
    with _copy(AnnotationEvent, _EVENT_COLUMNS) as copy:
        for pk, r, geometry in zip(ids, rows, geometries, strict=True):
            after = new_state_json(r, geometry)
            copy.write_row((pk, user_id, now, EventAction.CREATE, None, after, 1))
    return ids


class _copy:
    """``COPY table (columns) FROM STDIN`` on Django's connection, as a context manager."""

    def __init__(self, model: type[models.Model], fields: Sequence[str]) -> None:
        # Concrete fields only: each has a column (get_field is typed to return relations too).
        concrete = {n: f.column for f in model._meta.concrete_fields for n in (f.name, f.attname)}
        columns = ", ".join(concrete[name] for name in fields)
        self.sql = f"COPY {model._meta.db_table} ({columns}) FROM STDIN"

    def __enter__(self):
        self._cursor = connection.cursor()
        self._copy = self._cursor.cursor.copy(self.sql)
        return self._copy.__enter__()

    def __exit__(self, *exc_info) -> None:
        try:
            self._copy.__exit__(*exc_info)
        finally:
            self._cursor.close()


def _reserve_ids(count: int) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [Annotation._meta.db_table, count],
        )
        return sorted(row[0] for row in cursor.fetchall())


def _json_or_none(value: object) -> str | None:
    return None if value is None else _encode(value)

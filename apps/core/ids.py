"""Row ids from query strings: one parser, so every filter refuses the same bad values."""

from __future__ import annotations

#: The largest id a BigAutoField holds; a larger number cannot name a row, and passing it to
#: the database overflows (SQLite) or errors (PostgreSQL) instead of matching nothing.
MAX_ID = 2**63 - 1


def parse_id(value: str) -> int | None:
    """``value`` as a row id (0 to :data:`MAX_ID`, ASCII digits; 0 matches nothing), or None."""
    if not (value.isascii() and value.isdigit()):
        return None
    number = int(value)
    return number if number <= MAX_ID else None

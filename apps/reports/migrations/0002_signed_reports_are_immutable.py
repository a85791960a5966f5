"""The database refuses any change to a signed report version, its review marks and the cells
of its review set, and any rewrite of an audit entry (as apps/analysis migration 0002 does for
finished runs: one trigger per table, PostgreSQL and SQLite).

"Signed" is ``signed_at IS NOT NULL``, the same test as ``ReportVersion.is_signed``. The
signing itself is the one update allowed: it moves ``signed_at`` from NULL to a time.
"""

from django.db import migrations

VERSION = "reports_reportversion"
MARK = "reports_reviewmark"
CELL = "annotations_annotation"
AUDIT = "reports_auditentry"
MESSAGE = "a signed report never changes; amend it instead"
AUDIT_MESSAGE = "the report audit log is append-only"

SIGNED_SET = f"EXISTS (SELECT 1 FROM {VERSION} v WHERE v.review_set_id = {{row}}.set_id AND v.signed_at IS NOT NULL)"
SIGNED_MARK = f"EXISTS (SELECT 1 FROM {VERSION} v WHERE v.id = {{row}}.version_id AND v.signed_at IS NOT NULL)"
AUDIT_FIELDS = ("report_id", "version_number", "username", "at", "action", "detail")

# (name, table, events, condition over OLD/NEW); PostgreSQL and SQLite spell them alike here.
GUARDS = [
    ("report_version_signed", VERSION, "UPDATE", "OLD.signed_at IS NOT NULL"),
    ("report_version_signed_delete", VERSION, "DELETE", "OLD.signed_at IS NOT NULL"),
    ("report_cell_signed", CELL, "UPDATE", SIGNED_SET.format(row="OLD")),
    ("report_cell_signed_delete", CELL, "DELETE", SIGNED_SET.format(row="OLD")),
    ("report_cell_signed_insert", CELL, "INSERT", SIGNED_SET.format(row="NEW")),
    ("report_mark_signed", MARK, "UPDATE", SIGNED_MARK.format(row="OLD")),
    ("report_mark_signed_delete", MARK, "DELETE", SIGNED_MARK.format(row="OLD")),
    ("report_mark_signed_insert", MARK, "INSERT", SIGNED_MARK.format(row="NEW")),
]
AUDIT_CHANGED = " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in AUDIT_FIELDS)
AUDIT_CHANGED_SQLITE = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in AUDIT_FIELDS)


def _pg(name: str, table: str, event: str, condition: str, message: str) -> str:
    row = "OLD" if event == "DELETE" else "NEW"
    return f"""
CREATE FUNCTION {name}() RETURNS trigger AS $$
BEGIN
  IF {condition} THEN RAISE EXCEPTION '{message}'; END IF;
  RETURN {row};
END $$ LANGUAGE plpgsql;
CREATE TRIGGER {name} BEFORE {event} ON {table} FOR EACH ROW EXECUTE FUNCTION {name}();
"""


def _sqlite(name: str, table: str, event: str, condition: str, message: str) -> str:
    return f"""
CREATE TRIGGER {name} BEFORE {event} ON {table} WHEN {condition}
BEGIN SELECT RAISE(ABORT, '{message}'); END;
"""


def _statements(vendor: str) -> list[str]:
    make = {"postgresql": _pg, "sqlite": _sqlite}.get(vendor)
    if make is None:
        return []
    out = [make(name, table, event, cond, MESSAGE) for name, table, event, cond in GUARDS]
    audit = AUDIT_CHANGED if vendor == "postgresql" else AUDIT_CHANGED_SQLITE
    out.append(make("report_audit_append_only", AUDIT, "UPDATE", audit, AUDIT_MESSAGE))
    return out


def _names() -> list[tuple[str, str]]:
    return [(n, t) for n, t, _, _ in GUARDS] + [("report_audit_append_only", AUDIT)]


def guard(apps, schema_editor):
    for sql in _statements(schema_editor.connection.vendor):
        schema_editor.execute(sql)


def unguard(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for name, table in _names():
        if vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name} ON {table};")
            schema_editor.execute(f"DROP FUNCTION IF EXISTS {name}();")
        elif vendor == "sqlite":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name};")


class Migration(migrations.Migration):
    dependencies = [("reports", "0001_initial")]

    operations = [migrations.RunPython(guard, unguard)]

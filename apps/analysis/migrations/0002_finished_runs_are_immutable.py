"""The database refuses to change a finished run's record, and the lease sweep is scheduled.

Only the record's content is guarded: a deleted user's foreign keys (``created_by``,
``cancel_requested_by``) and ``retry_of`` may still be set to NULL by Django's ``SET_NULL``.
"""

from django.db import migrations

TABLE = "analysis_analysisrun"
FINISHED = "('done', 'failed', 'cancelled')"
GUARDED = (
    "slide_id", "status", "config", "overrides", "chunk_size", "slide_sha256", "models_used",
    "software_version", "device", "progress", "timings", "front", "summary", "error",
    "roi_set_id", "toi_set_id", "cell_set_id", "started_at", "finished_at",
)
MESSAGE = "a finished analysis run is immutable; start a new run instead"

PG_UP = f"""
CREATE FUNCTION analysis_run_immutable() RETURNS trigger AS $$
BEGIN
  IF OLD.status IN {FINISHED} AND (
    {" OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in GUARDED)}
  ) THEN
    RAISE EXCEPTION '{MESSAGE}';
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER analysis_run_immutable BEFORE UPDATE ON {TABLE}
  FOR EACH ROW EXECUTE FUNCTION analysis_run_immutable();
"""
PG_DOWN = f"""
DROP TRIGGER IF EXISTS analysis_run_immutable ON {TABLE};
DROP FUNCTION IF EXISTS analysis_run_immutable();
"""
SQLITE_UP = f"""
CREATE TRIGGER analysis_run_immutable BEFORE UPDATE ON {TABLE}
WHEN OLD.status IN {FINISHED} AND (
  {" OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in GUARDED)}
)
BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;
"""
SQLITE_DOWN = "DROP TRIGGER IF EXISTS analysis_run_immutable;"


def guard(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    sql = {"postgresql": PG_UP, "sqlite": SQLITE_UP}.get(vendor)
    if sql:
        schema_editor.execute(sql)


def unguard(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    sql = {"postgresql": PG_DOWN, "sqlite": SQLITE_DOWN}.get(vendor)
    if sql:
        schema_editor.execute(sql)


def schedule_sweep(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.update_or_create(
        name="analysis-lease-sweep",
        defaults={
            "func": "apps.analysis.tasks.sweep",
            "schedule_type": "I",  # MINUTES
            "minutes": 1,
            "repeats": -1,
        },
    )


def unschedule_sweep(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="analysis-lease-sweep").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("analysis", "0001_initial"),
        ("django_q", "0018_task_success_index"),
    ]

    operations = [
        migrations.RunPython(guard, unguard),
        migrations.RunPython(schedule_sweep, unschedule_sweep),
    ]

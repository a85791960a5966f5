"""Every minute, queue again the ingests whose queue entry was lost (services.requeue_lost_ingests)."""

from django.db import migrations


def schedule_sweep(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name="slide-ingest-sweep",
        defaults={
            "func": "apps.slides.tasks.sweep_ingests",
            "schedule_type": "I",  # MINUTES
            "minutes": 1,
            "repeats": -1,
        },
    )


def unschedule_sweep(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="slide-ingest-sweep").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("slides", "0001_initial"),
        ("django_q", "0018_task_success_index"),
    ]

    operations = [migrations.RunPython(schedule_sweep, unschedule_sweep)]

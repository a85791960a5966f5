"""Review copies made before ``report_review`` existed were ``model_run`` sets: relabel them, so
the workspace and the annotation API tell a report's corrected copy from a run's own output."""

from django.db import migrations


def relabel(apps, schema_editor):
    AnnotationSet = apps.get_model("annotations", "AnnotationSet")
    ReportVersion = apps.get_model("reports", "ReportVersion")
    review_sets = ReportVersion.objects.values("review_set_id")
    AnnotationSet.objects.filter(pk__in=review_sets).update(source="report_review")


def unlabel(apps, schema_editor):
    AnnotationSet = apps.get_model("annotations", "AnnotationSet")
    AnnotationSet.objects.filter(source="report_review").update(source="model_run")


class Migration(migrations.Migration):
    dependencies = [
        ("reports", "0003_manual_count"),
        ("annotations", "0004_report_review_source"),
    ]

    operations = [migrations.RunPython(relabel, unlabel)]

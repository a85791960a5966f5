from django.urls import path

from . import views

base = "analyses/<int:run_id>/report/"
urlpatterns = [
    path(base, views.report, name="report"),
    path(f"{base}cells/", views.cells, name="report-cells"),
    path(f"{base}cells/sprite.jpeg", views.sprite, name="report-sprite"),
    path(f"{base}cells/<int:cell_id>/reclassify/", views.reclassify, name="report-reclassify"),
    path(f"{base}cells/<int:cell_id>/confirm/", views.confirm, name="report-confirm"),
    path(f"{base}sign/", views.sign, name="report-sign"),
    path(f"{base}amend/", views.amend, name="report-amend"),
    path(f"{base}audit/", views.audit, name="report-audit"),
    path(f"{base}audit.csv", views.audit, {"fmt": "csv"}, name="report-audit-csv"),
    path(f"{base}comparison/", views.comparison, name="report-comparison"),
    path("slides/<int:slide_id>/manual-count/", views.manual_count, name="manual-count"),
    path("slides/<int:slide_id>/runs/", views.slide_runs, name="slide-runs"),
]

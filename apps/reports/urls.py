from django.urls import path

from . import views

app_name = "reports"
urlpatterns = [
    path("analyses/<int:run_id>/report/", views.report_page, name="page"),
    path("analyses/<int:run_id>/report.pdf", views.report_pdf, name="pdf"),
    path("analyses/<int:run_id>/report.fhir.json", views.report_fhir, name="fhir"),
    path("slides/<int:slide_id>/manual-count/", views.counter_page, name="counter"),
]

from django.urls import path, re_path

from . import views

app_name = "agreement"
urlpatterns = [
    path("slides/<int:slide_id>/agreement/", views.slide_report, name="slide"),
    re_path(
        r"^slides/(?P<slide_id>[0-9]+)/agreement\.(?P<fmt>json|csv)$",
        views.slide_download,
        name="slide-download",
    ),
    path("slides/<int:slide_id>/agreement/compute/", views.slide_compute, name="compute"),
    path("slides/<int:slide_id>/adjudicate/", views.adjudicate, name="adjudicate"),
    path("slides/<int:slide_id>/adjudicate/start/", views.adjudicate_start, name="start"),
    path("projects/<int:project_id>/agreement/", views.project_report, name="project"),
    path(
        "projects/<int:project_id>/agreement/compute/",
        views.project_compute,
        name="project-compute",
    ),
    re_path(
        r"^projects/(?P<project_id>[0-9]+)/agreement\.(?P<fmt>json|csv)$",
        views.project_download,
        name="project-download",
    ),
]

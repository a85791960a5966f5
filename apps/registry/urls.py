from django.urls import path

from . import views

app_name = "registry"
urlpatterns = [
    path("projects/<int:project_id>/models/", views.project_models, name="project"),
    path(
        "projects/<int:project_id>/models/<int:version_id>/activate/",
        views.activate,
        name="activate",
    ),
    path("projects/<int:project_id>/models/rollback/", views.roll_back, name="rollback"),
]

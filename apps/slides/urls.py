from django.urls import path

from . import views

app_name = "slides"
urlpatterns = [
    path("", views.slide_list, name="list"),
    path("slides/upload/", views.slide_upload, name="upload"),
    path("slides/<int:slide_id>/view/", views.viewer, name="viewer"),
    path("slides/<int:slide_id>.dzi", views.dzi, name="dzi"),
    path(
        "slides/<int:slide_id>_files/<int:level>/<int:col>_<int:row>.jpeg",
        views.tile,
        name="tile",
    ),
]

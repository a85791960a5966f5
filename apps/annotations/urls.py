from django.urls import path

from . import views

app_name = "annotations"
urlpatterns = [
    path("slides/<int:slide_id>/annotate/", views.annotate, name="annotate"),
    path("slides/<int:slide_id>/gallery/", views.gallery, name="gallery"),
]

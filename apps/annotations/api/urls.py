from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import (
    AnnotationSetViewSet,
    AnnotationViewSet,
    LabelClassViewSet,
    SamProposeView,
    SamStatusView,
    TaskViewSet,
    ToiGridView,
)

router = SimpleRouter()
router.register("annotation-sets", AnnotationSetViewSet, basename="annotation-set")
router.register("annotations", AnnotationViewSet, basename="annotation")
router.register("tasks", TaskViewSet, basename="task")

label_classes = LabelClassViewSet.as_view({"get": "list", "post": "create"})
label_class = LabelClassViewSet.as_view(
    {"get": "retrieve", "patch": "partial_update", "delete": "destroy"}
)

urlpatterns = [
    path("projects/<int:project_pk>/label-classes/", label_classes, name="label-class-list"),
    path(
        "projects/<int:project_pk>/label-classes/<int:pk>/",
        label_class,
        name="label-class-detail",
    ),
    # The contract's crop URL has no trailing slash (it names an image file).
    path(
        "annotations/<int:pk>/crop.jpeg",
        AnnotationViewSet.as_view({"get": "crop"}),
        name="annotation-crop",
    ),
    path("slides/<int:pk>/toi-grid/", ToiGridView.as_view(), name="slide-toi-grid"),
    path("slides/<int:pk>/sam/", SamProposeView.as_view(), name="slide-sam"),
    path("sam/status/", SamStatusView.as_view(), name="sam-status"),
    *router.urls,
]

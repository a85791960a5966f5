from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import ExportJobViewSet

router = SimpleRouter()
router.register("exports", ExportJobViewSet, basename="export")

urlpatterns = [
    # Without the slash too: download managers resuming a file often drop it.
    path(
        "exports/<int:pk>/download",
        ExportJobViewSet.as_view({"get": "download"}),
        name="export-download-bare",
    ),
    *router.urls,
]

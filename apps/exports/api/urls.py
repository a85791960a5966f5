from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import ExportDownloadView, ExportJobViewSet

router = SimpleRouter()
router.register("exports", ExportJobViewSet, basename="export")

urlpatterns = [
    *router.urls,
    path("exports/<int:pk>/download", ExportDownloadView.as_view(), name="export-download"),
]

from rest_framework.routers import SimpleRouter

from .views import AnalysisRunViewSet

router = SimpleRouter()
router.register("analyses", AnalysisRunViewSet, basename="analysis")

urlpatterns = router.urls

from rest_framework.routers import SimpleRouter

from .views import ProjectAgreementViewSet, SlideAgreementViewSet

router = SimpleRouter()
router.register("agreement/slides", SlideAgreementViewSet, basename="agreement-slide")
router.register("agreement/projects", ProjectAgreementViewSet, basename="agreement-project")

urlpatterns = router.urls

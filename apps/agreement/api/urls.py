from rest_framework.routers import SimpleRouter

from .views import AgreementJobViewSet, ProjectAgreementViewSet, SlideAgreementViewSet

router = SimpleRouter()
router.register("agreement/slides", SlideAgreementViewSet, basename="agreement-slide")
router.register("agreement/projects", ProjectAgreementViewSet, basename="agreement-project")
router.register("agreement/jobs", AgreementJobViewSet, basename="agreement-job")

urlpatterns = router.urls

from rest_framework.routers import SimpleRouter

from .views import SlideViewSet

router = SimpleRouter()
router.register("slides", SlideViewSet, basename="slide")
urlpatterns = router.urls

from rest_framework.routers import SimpleRouter

from .views import ModelVersionViewSet, TrainingJobViewSet

router = SimpleRouter()
# Before "models": its detail route would otherwise read "training-jobs" as an id.
router.register("models/training-jobs", TrainingJobViewSet, basename="training-job")
router.register("models", ModelVersionViewSet, basename="model-version")

urlpatterns = router.urls

from django.apps import AppConfig


class RegistryConfig(AppConfig):
    """Model registry: the model cards in ``settings.MODEL_DIR`` and how they get there."""

    name = "apps.registry"
    label = "registry"

from django.apps import AppConfig


class RegistryConfig(AppConfig):
    """Model registry: versions of each task's model per project, and how they get there."""

    name = "apps.registry"
    label = "registry"

from django.apps import AppConfig


class AgreementConfig(AppConfig):
    name = "apps.agreement"
    label = "agreement"
    verbose_name = "Inter-observer agreement"
    default_auto_field = "django.db.models.BigAutoField"

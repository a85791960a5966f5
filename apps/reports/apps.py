from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "apps.reports"
    label = "reports"
    verbose_name = "DCC reports and sign-off"
    default_auto_field = "django.db.models.BigAutoField"

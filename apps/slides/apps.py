from django.apps import AppConfig


class SlidesConfig(AppConfig):
    name = "apps.slides"
    label = "slides"

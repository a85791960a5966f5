from django.urls import path

from .consumers import AnalysisProgressConsumer

websocket_urlpatterns = [
    path("ws/analyses/<int:run_id>/", AnalysisProgressConsumer.as_asgi()),
]

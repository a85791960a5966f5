"""ASGI entry point: daphne serves HTTP and the websockets of job progress."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bmadcc_web.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from apps.analysis.routing import websocket_urlpatterns as analysis_ws  # noqa: E402
from apps.slides.tile_asgi import DeepZoomTiles  # noqa: E402
from bmadcc_web.body_limit import BodyLimitASGI  # noqa: E402

# Oversized bodies are refused before they are received (bmadcc_web/body_limit.py); deep-zoom
# tile GETs take a fast path in front of Django (see apps/slides/tile_asgi.py).
application = ProtocolTypeRouter(
    {
        "http": BodyLimitASGI(DeepZoomTiles(django_asgi_app)),
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(analysis_ws))),
    }
)

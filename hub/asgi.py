"""ASGI entry point: HTTP through Django, ``/ws/`` through the hub consumer."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")

from channels.routing import ProtocolTypeRouter, URLRouter
from django.core.asgi import get_asgi_application
from django.urls import path

django_asgi_app = get_asgi_application()

from hub.realtime.consumer import HubConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter([path("ws/", HubConsumer.as_asgi())]),
    }
)

"""ASGI entry point: HTTP through Django, ``/ws/`` through the hub consumer."""

import gc
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")

from channels.routing import ProtocolTypeRouter, URLRouter
from django.core.asgi import get_asgi_application
from django.urls import path

django_asgi_app = get_asgi_application()

from hub.realtime.consumer import HubConsumer  # noqa: E402
from hub.realtime.daphne_tuning import tune_daphne  # noqa: E402

tune_daphne()

# Everything imported so far lives as long as the process: freeze it out of the
# collector's generations and collect less often. With 5,000 sockets the default
# thresholds caused 240 ms heartbeat pauses (docs/benchmarks.md).
gc.collect()
gc.freeze()
gc.set_threshold(*(int(x) for x in os.environ.get("HUB_GC_THRESHOLD", "50000,50,100").split(",")))

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter([path("ws/", HubConsumer.as_asgi())]),
    }
)

"""ASGI entry point: HTTP through Django, ``/ws/`` through the hub consumer."""

import gc
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")

from channels.routing import ProtocolTypeRouter, URLRouter
from django.core.asgi import get_asgi_application
from django.urls import path

django_asgi_app = get_asgi_application()

from hub.outside import refuse_sandboxes_in_production  # noqa: E402

refuse_sandboxes_in_production()  # a production process never serves on a sandbox adapter

from hub.realtime.consumer import HubConsumer  # noqa: E402
from hub.realtime.daphne_tuning import tune_daphne  # noqa: E402

tune_daphne()

if "daphne.server" in sys.modules:
    from django.conf import settings

    if settings.MEDIA_EMBEDDED:
        # The embedded media node's RTMP and HTTP-FLV/HLS ports open with the server.
        from daphne.server import twisted_loop

        from apps.media.embedded import start_with_server

        start_with_server(twisted_loop)

if "daphne.server" in sys.modules:
    from django.conf import settings

    if settings.TIMED_CLOCK:
        # The timed-session clock (ticks, warnings, hard stops) runs on the server's loop.
        from daphne.server import twisted_loop

        from apps.timed.clock import start_with_server as start_timed_clock

        start_timed_clock(twisted_loop)

# Everything imported so far lives as long as the process: freeze it out of the
# collector's generations and collect less often. With 5,000 sockets the default
# thresholds caused 240 ms heartbeat pauses (docs/benchmarks.md).
gc.collect()
gc.freeze()
gc.set_threshold(*(int(x) for x in os.environ.get("HUB_GC_THRESHOLD", "50000,50,100").split(",")))
# Database threads wake from I/O needing the GIL while the event loop holds it;
# with the default 5 ms switch interval every round trip could wait that long.
sys.setswitchinterval(float(os.environ.get("HUB_SWITCH_INTERVAL", "0.0005")))

from apps.im.upload_guard import UploadGuard  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Attachment uploads are refused on size and membership before their body is read.
        "http": UploadGuard(django_asgi_app),
        "websocket": URLRouter([path("ws/", HubConsumer.as_asgi())]),
    }
)

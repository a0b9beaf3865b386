"""Transport settings daphne does not expose.

Twisted leaves Nagle's algorithm on, so a small WebSocket frame can wait for
the peer's delayed ACK (~40 ms) before it leaves: the hub measured a 55 ms
median latency at 5,000 deliveries/s until TCP_NODELAY was set (asyncio
servers set it by default). See docs/benchmarks.md."""

from __future__ import annotations

from typing import Any


def tune_daphne() -> None:
    try:
        from daphne.ws_protocol import WebSocketProtocol
    except ImportError:  # another ASGI server
        return
    try:
        import autobahn.websocket.protocol as autobahn_protocol

        # autobahn pretty-prints its whole configuration for a debug log line on
        # every connection, logged or not: a few % of a reconnect storm.
        autobahn_protocol.pformat = lambda *args, **kwargs: ""
    except ImportError:
        pass
    original = WebSocketProtocol.onConnect
    if getattr(original, "_hub_nodelay", False):
        return

    def on_connect(self: Any, request: Any) -> Any:
        try:
            self.transport.setTcpNoDelay(True)
        except Exception:  # noqa: S110 - not a TCP transport (tests): nothing to tune
            pass
        return original(self, request)

    on_connect._hub_nodelay = True  # type: ignore[attr-defined]
    WebSocketProtocol.onConnect = on_connect

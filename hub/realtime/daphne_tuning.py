"""Transport settings daphne does not expose.

Twisted leaves Nagle's algorithm on, so a small WebSocket frame can wait for
the peer's delayed ACK (~40 ms) before it leaves: the hub measured a 55 ms
median latency at 5,000 deliveries/s until TCP_NODELAY was set (asyncio
servers set it by default). See docs/benchmarks.md.

Oversized and invalid frames: autobahn enforces daphne's 1 MB message limit and
UTF-8 validity itself, and by default fails such a connection by dropping TCP
(the client sees 1006, not a documented code). Each socket's limit is set to the
hub's own (``WS_MAX_FRAME_BYTES``: nothing larger is buffered), and those
failures close with a handshake and the protocol's codes instead: 4009 for a
frame over the limit, 4011 for invalid UTF-8 in a text frame (or another
invalid payload). See docs/realtime-protocol.md."""

from __future__ import annotations

import re
from typing import Any

# Signed grants, tokens and tickets travel in some URLs (replay, media, socket tickets):
# the access log keeps the path and drops their values (issue 11, finding 12).
_SECRET_PARAMS = re.compile(r"([?&](?:grant|token|ticket|access_token)=)[^&\s]+", re.IGNORECASE)


def redact_url(path: str) -> str:
    return _SECRET_PARAMS.sub(r"\1[redacted]", path)


def _redact_access_log() -> None:
    try:
        from daphne.access import AccessLogGenerator
    except ImportError:
        return
    original = AccessLogGenerator.__call__
    if getattr(original, "_hub_redacts", False):
        return

    def call(self: Any, protocol: str, action: str, details: dict[str, Any]) -> Any:
        if isinstance(details.get("path"), str):
            details = {**details, "path": redact_url(details["path"])}
        return original(self, protocol, action, details)

    call._hub_redacts = True  # type: ignore[attr-defined]
    AccessLogGenerator.__call__ = call


def tune_daphne() -> None:
    _redact_access_log()
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
    from django.conf import settings

    from .protocol import Close

    def on_connect(self: Any, request: Any) -> Any:
        try:
            self.transport.setTcpNoDelay(True)
        except Exception:  # noqa: S110 - not a TCP transport (tests): nothing to tune
            pass
        # The hub's limit, not daphne's 1 MB: an oversized frame is refused as it starts.
        limit = settings.WS_MAX_FRAME_BYTES
        self.maxMessagePayloadSize = self.maxFramePayloadSize = limit
        return original(self, request)

    def fail_with(self: Any, code: int, reason: str) -> None:
        # A closing handshake carrying ``code`` (not a dropped connection); frames
        # still arriving are discarded (autobahn's failedByMe) until it closes.
        drop = self.failByDrop
        self.failByDrop = False
        try:
            self._fail_connection(code, reason)
        finally:
            self.failByDrop = drop

    def too_big(self: Any, size: int, limit: int, reason: str) -> None:
        fail_with(self, Close.FRAME_TOO_BIG, "frame too big")

    def invalid_payload(self: Any, reason: str) -> bool:
        fail_with(self, Close.PROTOCOL_ERROR, "invalid payload")
        return False  # keep reading, for the peer's closing handshake

    if hasattr(WebSocketProtocol, "_max_message_size_exceeded") and hasattr(WebSocketProtocol, "_fail_connection"):
        WebSocketProtocol._max_message_size_exceeded = too_big
        WebSocketProtocol._invalid_payload = invalid_payload

    on_connect._hub_nodelay = True  # type: ignore[attr-defined]
    WebSocketProtocol.onConnect = on_connect

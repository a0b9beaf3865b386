"""The one multiplexed WebSocket per client at ``/ws/``.

Thin by design: it authenticates, enforces transport limits, authorises topics
and relays events. Domain decisions live in the apps' services."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from hub.context import RequestMeta, reset_request_meta, set_request_meta

from . import protocol, topics
from .protocol import Close
from .ratelimit import Limiter

log = logging.getLogger(__name__)

_limiter: Limiter | None = None
# How often an open socket re-checks that its token is still live, as a backstop
# for a lost session-end message (the channel layer is at-most-once).
RECHECK_SECONDS = 60


def limiter() -> Limiter:
    global _limiter
    if _limiter is None:
        _limiter = Limiter(settings.WS_RATE_PER_SECOND, settings.WS_RATE_BURST)
    return _limiter


def _resolve_token(*, token: str | None, ticket: str | None, ip: str) -> tuple[Any, int] | None:
    from apps.accounts import services

    meta = set_request_meta(RequestMeta(ip=ip))
    try:
        if ticket is not None:
            live = services.realtime_ticket_redeem(ticket)
        else:
            live = services.token_authenticate(token or "")
        return (live.user, live.pk) if live else None
    finally:
        reset_request_meta(meta)


def _token_live(token_id: int) -> bool:
    from django.utils import timezone

    from apps.accounts.models import AuthToken

    return AuthToken.objects.filter(
        pk=token_id, revoked_at__isnull=True, expires_at__gt=timezone.now(), user__is_active=True
    ).exists()


class HubConsumer(AsyncWebsocketConsumer):
    user: Any = None
    token_id: int | None = None

    async def connect(self) -> None:
        headers = dict(self.scope.get("headers", []))
        origin = headers.get(b"origin", b"").decode("latin-1")
        client = self.scope.get("client") or ("", 0)
        self.ip = str(client[0] or "")
        if origin and origin not in settings.WS_ALLOWED_ORIGINS:
            # Refuse at the handshake: a foreign page never gets a socket (CSWSH).
            log.warning("socket refused: origin %s", origin)
            await self.close()
            return
        # No browser Origin (mini-programs, kiosks' native shells): ticket only,
        # so a stolen bearer token cannot be replayed from a script.
        self.ticket_only = not origin
        self.topics: set[str] = set()
        self.last_check = time.monotonic()
        await self.accept()
        self.deadline = asyncio.get_running_loop().call_later(
            settings.WS_AUTH_TIMEOUT_SECONDS, lambda: asyncio.ensure_future(self._auth_deadline())
        )

    async def _auth_deadline(self) -> None:
        if self.user is None:
            await self.close(code=Close.AUTH_FAILED)

    async def disconnect(self, code: int) -> None:
        deadline = getattr(self, "deadline", None)
        if deadline is not None:
            deadline.cancel()
        if self.user is not None and self.channel_layer is not None:
            groups = [protocol.group_for_user(self.user.pk), protocol.group_for_token(self.token_id or 0)]
            groups += [protocol.group_for_topic(t) for t in self.topics]
            for group in groups:
                await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if bytes_data is not None or text_data is None:
            await self.close(code=Close.PROTOCOL_ERROR)
            return
        if len(text_data) > settings.WS_MAX_FRAME_BYTES or len(text_data.encode()) > settings.WS_MAX_FRAME_BYTES:
            await self.close(code=Close.FRAME_TOO_BIG)
            return
        if not limiter().allow(self.user.pk if self.user is not None else self.channel_name):
            await self.close(code=Close.RATE_LIMITED)
            return
        try:
            frame = protocol.decode(text_data)
        except protocol.ProtocolError:
            await self.close(code=Close.PROTOCOL_ERROR)
            return
        kind = frame["type"]
        if self.user is None:
            if kind != "auth":
                await self.close(code=Close.AUTH_FAILED)
                return
            await self._auth(frame)
            return
        handler = self._handlers.get(kind)
        if handler is None:
            await self._send(protocol.error(frame.get("id"), "protocol.unknown_type", "不支持的消息类型"))
            return
        await handler(self, frame)

    async def _send(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=protocol.encode(frame))

    async def _auth(self, frame: dict[str, Any]) -> None:
        token, ticket = frame.get("token"), frame.get("ticket")
        if self.ticket_only and ticket is None:
            await self.close(code=Close.AUTH_FAILED)
            return
        if (
            not isinstance(token, str | None)
            or not isinstance(ticket, str | None)
            or (token is None) == (ticket is None)
        ):
            await self.close(code=Close.AUTH_FAILED)
            return
        resolved = await database_sync_to_async(_resolve_token)(token=token, ticket=ticket, ip=self.ip)
        if resolved is None:
            await self.close(code=Close.AUTH_FAILED)
            return
        self.user, self.token_id = resolved
        self.deadline.cancel()
        await self.channel_layer.group_add(protocol.group_for_user(self.user.pk), self.channel_name)
        await self.channel_layer.group_add(protocol.group_for_token(self.token_id), self.channel_name)
        self.last_check = time.monotonic()
        await self._send(
            {
                "type": "auth.ok",
                "reply_to": frame.get("id"),
                "user": {"id": self.user.pk, "role": self.user.role, "display_name": self.user.display_name},
                "heartbeat": settings.WS_HEARTBEAT_SECONDS,
            }
        )

    async def _ping(self, frame: dict[str, Any]) -> None:
        if time.monotonic() - self.last_check > RECHECK_SECONDS:
            self.last_check = time.monotonic()
            if not await database_sync_to_async(_token_live)(self.token_id or 0):
                await self.close(code=Close.SESSION_ENDED)
                return
        await self._send({"type": "pong", "reply_to": frame.get("id")})

    async def _subscribe(self, frame: dict[str, Any]) -> None:
        topic = frame.get("topic")
        match = protocol.TOPIC_RE.match(topic) if isinstance(topic, str) else None
        if match is None:
            await self._send(protocol.error(frame.get("id"), "topic.invalid", "订阅主题格式错误"))
            return
        assert isinstance(topic, str)
        allowed = await database_sync_to_async(topics.authorize)(self.user, match.group(1), match.group(2))
        if not allowed:
            await self._send(protocol.error(frame.get("id"), "topic.forbidden", "无权订阅该主题"))
            return
        if topic not in self.topics:
            self.topics.add(topic)
            await self.channel_layer.group_add(protocol.group_for_topic(topic), self.channel_name)
        await self._send({"type": "reply", "reply_to": frame.get("id"), "ok": True})

    async def _unsubscribe(self, frame: dict[str, Any]) -> None:
        topic = frame.get("topic")
        if isinstance(topic, str) and topic in self.topics:
            self.topics.discard(topic)
            await self.channel_layer.group_discard(protocol.group_for_topic(topic), self.channel_name)
        await self._send({"type": "reply", "reply_to": frame.get("id"), "ok": True})

    _handlers = {"ping": _ping, "subscribe": _subscribe, "unsubscribe": _unsubscribe}

    # --- channel layer messages ------------------------------------------

    async def session_end(self, message: dict[str, Any]) -> None:
        await self.close(code=Close.SESSION_ENDED)

    async def hub_event(self, message: dict[str, Any]) -> None:
        if message["topic"] in self.topics:
            await self._send(
                {"type": "event", "topic": message["topic"], "event": message["event"], "data": message["data"]}
            )

"""The one multiplexed WebSocket per client at ``/ws/``.

Thin by design: it authenticates, enforces transport limits, authorises topics
and relays events. Domain frames (``im.send``...) go to handlers registered by
the apps. Events arrive through the process's ``HubNode``, not the channel
layer: no per-socket channel, no per-member channel-layer hop."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from hub.context import RequestMeta, set_request_meta
from hub.errors import ApiError, HubCode, HubError
from hub.identity import identity

from . import presence, protocol, topics
from .db import run_db
from .handlers import handler_for
from .node import node
from .protocol import Close
from .ratelimit import Limiter

log = logging.getLogger(__name__)

_limiter: Limiter | None = None
# How often an open socket re-checks that its token is still live, as a backstop
# for a lost session-end message (the pub/sub path is at-most-once).
RECHECK_SECONDS = 60
# Presence refreshes at most this often per socket, whatever the ping rate.
HEARTBEAT_HOOK_SECONDS = 20


# Called with the socket once it has closed (whatever the close code), in the background:
# apps end what the socket opened (media ends its publications and playbacks). A callback
# that fails is logged; the others still run.
DisconnectCallback = Callable[[Any], Awaitable[None]]
_on_disconnect: list[DisconnectCallback] = []


def register_disconnect(callback: DisconnectCallback) -> None:
    """Register ``async callback(socket)`` for every socket that closes (idempotent)."""
    if callback not in _on_disconnect:
        _on_disconnect.append(callback)


async def _run_disconnect(callback: DisconnectCallback, socket: Any) -> None:
    try:
        await callback(socket)
    except Exception:
        log.exception("socket disconnect callback %r failed", callback)


def limiter() -> Limiter:
    global _limiter
    if _limiter is None:
        _limiter = Limiter(settings.WS_RATE_PER_SECOND, settings.WS_RATE_BURST)
    return _limiter


def _resolve_token(*, token: str | None, ticket: str | None) -> tuple[Any, int] | None:
    auth = identity()
    live = auth.ticket_redeem(ticket) if ticket is not None else auth.authenticate(token or "")
    return (live.user, live.pk) if live else None


def _token_live(token_id: int) -> bool:
    return identity().token_live(token_id)


class HubConsumer(AsyncWebsocketConsumer):
    # No channel layer per socket: events come through the HubNode.
    channel_layer_alias = "__hub_none__"

    user: Any = None
    token_id: int | None = None
    deadline: asyncio.TimerHandle | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # Channels' AsyncConsumer.__call__ runs await_many_dispatch, which wraps
        # every received frame in a new task and an asyncio.wait; with no channel
        # layer there is one source only, so a plain loop does the same work.
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Stock dispatch awaits aclose_old_connections() before every frame, a
        # thread hop per message; all database work here runs on the hub's own
        # pool (hub.realtime.db), so that hop buys nothing.
        handler = getattr(self, message["type"].replace(".", "_"), None)
        if handler is None:
            raise ValueError(f"no handler for {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        headers = dict(self.scope.get("headers", []))
        origin = headers.get(b"origin", b"").decode("latin-1")
        client = self.scope.get("client") or ("", 0)
        self.ip = str(client[0] or "")
        set_request_meta(RequestMeta(ip=self.ip))
        if origin and origin not in settings.WS_ALLOWED_ORIGINS:
            # Refuse at the handshake: a foreign page never gets a socket (CSWSH).
            log.warning("socket refused: origin %s", origin)
            await self.close()
            return
        # No browser Origin (mini-programs, kiosks' native shells): ticket only,
        # so a stolen bearer token cannot be replayed from a script.
        self.ticket_only = not origin
        self.topics: set[str] = set()
        # Authorisations a handler verified and may reuse (topic -> when);
        # a revoked topic is forgotten at once, and ``revocations`` counts them
        # so a check that raced a revocation is not remembered.
        self.grants: dict[str, float] = {}
        self.revocations = 0
        self.last_check = time.monotonic()
        await self.accept()
        self.deadline = asyncio.get_running_loop().call_later(
            settings.WS_AUTH_TIMEOUT_SECONDS, lambda: node().spawn(self._auth_deadline())
        )

    async def _auth_deadline(self) -> None:
        if self.user is None:
            await self.close(code=Close.AUTH_FAILED)

    async def disconnect(self, code: int) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
        hub = node()
        for topic in self._attached():
            hub.detach(self, topic)
        if self.user is not None:
            for callback in list(_on_disconnect):
                hub.spawn(_run_disconnect(callback, self))
        # Still online through another socket in this process: keep presence
        # (sockets in other processes restore it on their next heartbeat).
        if self.user is not None and protocol.control_topic_user(self.user.pk) not in hub.topics:
            try:
                await presence.clear(self.user.pk)
            except Exception:  # presence is best effort
                log.debug("presence clear failed", exc_info=True)

    def _attached(self) -> list[str]:
        if self.user is None:
            return []
        own = [protocol.control_topic_user(self.user.pk), protocol.control_topic_token(self.token_id or 0)]
        return own + list(getattr(self, "topics", ()))

    def on_control(self, text: str) -> None:
        message = protocol.decode(text)
        if message["type"] == protocol.CONTROL_TOPIC_REVOKE:
            topic = str(message.get("topic", ""))
            self.revocations += 1
            self.grants.pop(topic, None)
            if topic in self.topics:
                self.topics.discard(topic)
                node().detach(self, topic)
                frame = {"type": "unsubscribed", "topic": topic, "reason": message.get("reason", "")}
                node().spawn(self.send_frame(frame))
            return
        # session.end (and anything unknown: fail closed): logout, disable, role change.
        node().spawn(self.close(code=Close.SESSION_ENDED))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if bytes_data is not None or text_data is None:
            await self.close(code=Close.PROTOCOL_ERROR)
            return
        if len(text_data) > settings.WS_MAX_FRAME_BYTES or len(text_data.encode()) > settings.WS_MAX_FRAME_BYTES:
            await self.close(code=Close.FRAME_TOO_BIG)
            return
        if not limiter().allow(self.user.pk if self.user is not None else id(self)):
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
        builtin = self._builtin.get(kind)
        if builtin is not None:
            await builtin(self, frame)
            return
        handler = handler_for(kind)
        if handler is None:
            await self.send_frame(protocol.error(frame.get("id"), "protocol.unknown_type", "不支持的消息类型"))
            return
        try:
            data = await handler(self, frame)
        except ApiError as exc:
            await self.send_frame(protocol.error(frame.get("id"), exc.code, exc.message))
            return
        except Exception:
            log.exception("handler %s failed", kind)
            failed = HubError(HubCode.INTERNAL_ERROR)
            await self.send_frame(protocol.error(frame.get("id"), failed.code, failed.message))
            return
        if "id" in frame:
            await self.send_frame({"type": "reply", "reply_to": frame["id"], "ok": True, "data": data or {}})

    async def send_frame(self, frame: dict[str, Any]) -> None:
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
        resolved = await run_db(_resolve_token, token=token, ticket=ticket)
        if resolved is None:
            await self.close(code=Close.AUTH_FAILED)
            return
        self.user, self.token_id = resolved
        if self.deadline is not None:
            self.deadline.cancel()
        hub = node()
        hub.attach(self, protocol.control_topic_user(self.user.pk))
        hub.attach(self, protocol.control_topic_token(self.token_id))
        if not hub.connected.is_set():
            # Wait (briefly) for the cross-process subscription so that nothing
            # published after auth.ok can be missed; without Redis, go on.
            try:
                await asyncio.wait_for(hub.connected.wait(), 2)
            except TimeoutError:
                log.warning("hub pub/sub not connected; socket continues on the local node")
        self.last_check = self.last_beat = time.monotonic()
        await self._presence()
        await self.send_frame(
            {
                "type": "auth.ok",
                "reply_to": frame.get("id"),
                "user": {"id": self.user.pk, "role": self.user.role, "display_name": self.user.display_name},
                "heartbeat": settings.WS_HEARTBEAT_SECONDS,
            }
        )

    async def _presence(self) -> None:
        try:
            await presence.touch(self.user.pk)
        except Exception as exc:  # Redis away: presence is best effort
            log.debug("presence touch failed: %s", exc)

    async def _ping(self, frame: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - self.last_check > RECHECK_SECONDS:
            self.last_check = now
            if not await run_db(_token_live, self.token_id or 0):
                await self.close(code=Close.SESSION_ENDED)
                return
        if now - self.last_beat > HEARTBEAT_HOOK_SECONDS:
            self.last_beat = now
            await self._presence()
        await self.send_frame({"type": "pong", "reply_to": frame.get("id")})

    async def _subscribe(self, frame: dict[str, Any]) -> None:
        topic = frame.get("topic")
        match = protocol.TOPIC_RE.match(topic) if type(topic) is str else None
        if match is None or type(topic) is not str:
            await self.send_frame(protocol.error(frame.get("id"), "topic.invalid", "订阅主题格式错误"))
            return
        try:
            allowed = await run_db(topics.authorize, self.user, match.group(1), match.group(2))
        except topics.InvalidTopic:
            await self.send_frame(protocol.error(frame.get("id"), "topic.invalid", "订阅主题格式错误"))
            return
        except Exception:
            # Never a crash of the whole socket (close 1011) for one subscribe.
            log.exception("authorising topic %s failed", topic)
            failed = HubError(HubCode.INTERNAL_ERROR)
            await self.send_frame(protocol.error(frame.get("id"), failed.code, failed.message))
            return
        if not allowed:
            await self.send_frame(protocol.error(frame.get("id"), "topic.forbidden", "无权订阅该主题"))
            return
        if topic not in self.topics:
            self.topics.add(topic)
            node().attach(self, topic)
        await self.send_frame({"type": "reply", "reply_to": frame.get("id"), "ok": True})

    async def _unsubscribe(self, frame: dict[str, Any]) -> None:
        topic = frame.get("topic")
        if isinstance(topic, str) and topic in self.topics:
            self.topics.discard(topic)
            node().detach(self, topic)
        await self.send_frame({"type": "reply", "reply_to": frame.get("id"), "ok": True})

    _builtin = {"ping": _ping, "subscribe": _subscribe, "unsubscribe": _unsubscribe}

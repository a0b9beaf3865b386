"""Process-local fan-out: the hub's delivery engine.

Each process holds one ``HubNode``. Sockets attach to topics in the node; a
published event is serialised once, written to every local socket on the topic,
and, when other hub processes exist, published once to Redis, where every
other node picks it up through a single pattern subscription and fans out to
its own sockets. That replaces one channel-layer message per member (85-145 us
of CPU each) with one Redis message per event (docs/adr/0005).

Cost control on the hot path:
- publishes are batched: one pipelined round trip per event-loop turn;
- nodes register in Redis (``hub:nodes``) and a node publishes only when it
  has peers, so a single process never parses its own echo;
- events from worker threads (services after commit) always go through Redis
  with origin ``ext`` so every node, this one included, delivers them.

Redis here is a hint, not the store: events lost while it is away are
recovered by clients from the durable log (``im.sync``); after the listener
reconnects every local socket is told to ``resync``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from django.conf import settings

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "hub:"
NODES_KEY = "hub:nodes"
CONTROL_PREFIX = "ctl."  # topics for control messages to sockets (session end)
SEP = "|"
REGISTRY_INTERVAL = 1.0  # seconds between registry refreshes
REGISTRY_TTL = 5.0  # a node missing this long is gone
# A new node announces itself on JOIN_CHANNEL and waits this long before it
# reports itself connected, so every running node publishes to Redis for it.
JOIN_GRACE_DEFAULT = 0.2
JOIN_CHANNEL = CHANNEL_PREFIX + "node.join"
JOIN_CHANNEL_BYTES = JOIN_CHANNEL.encode()


class Socket(Protocol):
    base_send: Callable[[dict[str, Any]], Awaitable[None]]

    def on_control(self, text: str) -> None: ...


class HubNode:
    def __init__(self) -> None:
        self.node_id = uuid.uuid4().hex[:12]
        self.topics: dict[str, set[Socket]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.connected = asyncio.Event()
        self.peers = 0  # other live hub processes
        self._redis: Any = None
        self._outbox: list[tuple[str, str]] = []
        self._flushing = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sync_redis: Any = None
        self._kv: Any = None
        self._sync_lock = threading.Lock()

    # --- membership ------------------------------------------------------

    def attach(self, socket: Socket, topic: str) -> None:
        self._ensure_started()
        self.topics.setdefault(topic, set()).add(socket)

    def detach(self, socket: Socket, topic: str) -> None:
        sockets = self.topics.get(topic)
        if sockets is not None:
            sockets.discard(socket)
            if not sockets:
                del self.topics[topic]

    def all_sockets(self) -> set[Socket]:
        result: set[Socket] = set()
        for sockets in self.topics.values():
            result |= sockets
        return result

    # --- delivery ----------------------------------------------------------

    def deliver_local(self, topic: str, text: str, exclude: Socket | None = None) -> None:
        sockets = self.topics.get(topic)
        if not sockets:
            return
        if topic.startswith(CONTROL_PREFIX):
            for socket in list(sockets):
                socket.on_control(text)
            return
        slow_path: list[Socket] = []
        frame: bytes | None = None
        for socket in sockets:
            if socket is exclude:
                continue
            wire = _wire(socket)
            if wire is None:
                slow_path.append(socket)
                continue
            if wire.state != wire.STATE_OPEN:
                continue
            if _pending_bytes(wire) > MAX_PENDING_BYTES:
                # A reader this far behind is disconnected, not buffered without
                # bound; it reconnects and resumes from the log.
                log.info("closing a slow socket (%d bytes pending)", _pending_bytes(wire))
                wire.sendClose(code=SLOW_CONSUMER)
                continue
            if frame is None:
                frame = text_frame(text)
            wire.sendData(frame)
        if slow_path:
            # One task per event, not per delivery; the message dict is shared.
            self.spawn(_fanout(slow_path, {"type": "websocket.send", "text": text}))

    async def publish(self, topic: str, text: str, exclude: Socket | None = None) -> None:
        """From the event loop: deliver here (except to ``exclude``, the sending
        socket), then to the other processes."""
        self.deliver_local(topic, text, exclude)
        if self.peers and self._redis is not None:
            self._outbox.append((CHANNEL_PREFIX + topic, self.node_id + SEP + text))
            if not self._flushing:
                self._flushing = True
                self.spawn(self._flush())

    async def _flush(self) -> None:
        """Send queued publishes in pipelined batches, in order."""
        try:
            while self._outbox and self._redis is not None:
                batch, self._outbox = self._outbox, []
                pipe = self._redis.pipeline(transaction=False)
                for channel, payload in batch:
                    pipe.publish(channel, payload)
                try:
                    await pipe.execute()
                except Exception as exc:
                    log.warning("hub publish to redis failed (%d events): %s", len(batch), exc)
        finally:
            self._flushing = False

    def publish_from_thread(self, topic: str, text: str) -> None:
        """From a worker thread (services after commit)."""
        if settings.REDIS_URL:
            try:
                self._sync_client().publish(CHANNEL_PREFIX + topic, "ext" + SEP + text)
            except Exception as exc:
                log.warning("hub publish to redis failed: %s", exc)
            return
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.deliver_local, topic, text)

    def kv(self) -> Any:
        """An async Redis client for small key/value work on this loop (presence)."""
        if self._kv is None:
            import redis.asyncio as aioredis

            self._kv = aioredis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
        return self._kv

    def _sync_client(self) -> Any:
        with self._sync_lock:
            if self._sync_redis is None:
                import redis

                self._sync_redis = redis.Redis.from_url(
                    settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2, health_check_interval=30
                )
            return self._sync_redis

    # --- the Redis side: listener and registry --------------------------------

    def _ensure_started(self) -> None:
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
            if settings.REDIS_URL:
                self.spawn(self._listen())
                self.spawn(self._registry())
            else:
                self.connected.set()

    async def _registry(self) -> None:
        """Announce this node and count its live peers, once a second."""
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
        while True:
            try:
                now = time.time()
                await client.hset(NODES_KEY, self.node_id, str(now + REGISTRY_TTL))
                nodes = await client.hgetall(NODES_KEY)
                alive, dead = 0, []
                for node_id, expires in nodes.items():
                    if float(expires) < now:
                        dead.append(node_id)
                    elif (node_id.decode() if isinstance(node_id, bytes) else node_id) != self.node_id:
                        alive += 1
                if dead:
                    await client.hdel(NODES_KEY, *dead)
                self.peers = alive
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Unknown peers: publish to be safe.
                self.peers = 1
                log.debug("hub registry refresh failed: %s", exc)
            await asyncio.sleep(REGISTRY_INTERVAL)

    async def _listen(self) -> None:
        import redis.asyncio as aioredis

        backoff = 0.2
        first = True
        while True:
            client = aioredis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, health_check_interval=15)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(CHANNEL_PREFIX + "*")
                self._redis = client
                if first:
                    # Announce the join so running nodes start publishing to
                    # Redis for this one at once, then give them a moment.
                    await client.hset(NODES_KEY, self.node_id, str(time.time() + REGISTRY_TTL))
                    await client.publish(JOIN_CHANNEL, self.node_id + SEP + "join")
                    await asyncio.sleep(float(getattr(settings, "HUB_JOIN_GRACE", JOIN_GRACE_DEFAULT)))
                self.connected.set()
                if not first:
                    log.info("hub node %s re-subscribed to redis; asking sockets to resync", self.node_id)
                    self._broadcast_resync()
                first = False
                backoff = 0.2
                async for message in pubsub.listen():
                    if message["type"] != "pmessage":
                        continue
                    origin, _, text = message["data"].decode().partition(SEP)
                    if origin == self.node_id:
                        continue  # our own echo: already delivered locally
                    if message["channel"] == JOIN_CHANNEL_BYTES:
                        self.peers = max(self.peers, 1)
                        continue
                    self.deliver_local(message["channel"].decode()[len(CHANNEL_PREFIX) :], text)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # reconnect with backoff, never crash-loop
                log.warning("hub redis listener lost (%s); retrying in %.1fs", exc, backoff)
            finally:
                self._redis = None
                self.connected.clear()
                try:
                    await pubsub.aclose()
                    await client.aclose()
                except Exception:  # noqa: S110
                    pass
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    def _broadcast_resync(self) -> None:
        message = {"type": "websocket.send", "text": '{"type":"resync"}'}
        self.spawn(_fanout(list(self.all_sockets()), message))

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` in the background, keeping a reference until it ends."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


MAX_PENDING_BYTES = 1 << 20
SLOW_CONSUMER = 4012


def text_frame(text: str) -> bytes:
    """A complete unmasked WebSocket text frame (server to client frames are
    never masked), so one encoding serves every recipient."""
    payload = text.encode()
    n = len(payload)
    if n < 126:
        header = bytes((0x81, n))
    elif n < 65536:
        header = bytes((0x81, 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + n.to_bytes(8, "big")
    return header + payload


def _wire(socket: Any) -> Any:
    """The daphne (autobahn) protocol behind a consumer, if there is one.

    Under daphne ``base_send`` is ``partial(server.handle_reply, protocol)``.
    Writing the pre-built frame through ``protocol.sendData`` skips the
    per-recipient ASGI hop and frame building (see docs/adr/0005). Any other
    server, or the test communicator, takes the ASGI path."""
    cached = socket.__dict__.get("_hub_wire", _UNSET)
    if cached is not _UNSET:
        return cached
    send = getattr(socket, "base_send", None)
    proto = None
    if isinstance(send, functools.partial) and send.args:
        candidate = send.args[0]
        if hasattr(candidate, "sendData") and hasattr(candidate, "STATE_OPEN") and hasattr(candidate, "transport"):
            proto = candidate
    socket.__dict__["_hub_wire"] = proto
    return proto


_UNSET = object()


def _pending_bytes(proto: Any) -> int:
    transport = proto.transport
    return int(getattr(transport, "_tempDataLen", 0)) + len(getattr(transport, "dataBuffer", b""))


async def _fanout(sockets: list[Socket], message: dict[str, Any]) -> None:
    for socket in sockets:
        try:
            await socket.base_send(message)
        except Exception:  # a closed socket must not stop the others
            log.debug("fan-out to a closed socket skipped")


_node: HubNode | None = None


def node() -> HubNode:
    global _node
    if _node is None:
        _node = HubNode()
    return _node

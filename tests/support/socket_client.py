"""The one hub-socket test client: the same frames over the in-process Channels
app (``WebsocketCommunicator``) or over a real server URL (``websockets``).

A background reader hands each reply to the request waiting for its id and
keeps every other frame in ``inbox`` (in arrival order) until a test takes it
with ``receive`` / ``wait_for``; ``on_frame`` may consume frames first (the
app-like ``HubClient`` counts and dedupes messages there).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import websockets
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from websockets.typing import Origin

Frame = dict[str, Any]
LOCAL_ORIGIN = "http://127.0.0.1:8000"


class UnexpectedFrame(AssertionError):
    """A reply of another type than the caller expected (a test failure, not a transport error)."""


class _Transport(Protocol):
    close_code: int | None

    async def send(self, text: str) -> None: ...

    async def recv(self) -> str | None:
        """The next text frame, or None once the socket is closed."""

    async def close(self) -> None: ...


class _InProcess:
    def __init__(self, comm: WebsocketCommunicator) -> None:
        self.comm = comm
        self.close_code: int | None = None

    async def send(self, text: str) -> None:
        await self.comm.send_to(text_data=text)

    async def recv(self) -> str | None:
        # Read the output queue directly: the communicator's own receive
        # timeouts cancel the application, which a waiting reader must not do.
        get = asyncio.ensure_future(self.comm.output_queue.get())
        try:
            await asyncio.wait({get, self.comm.future}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not get.done():
                get.cancel()
        if get.cancelled():  # the application ended first
            if not self.comm.future.cancelled():
                self.comm.future.result()  # raise what it raised
            return None
        message = get.result()
        if message["type"] == "websocket.close":
            self.close_code = message.get("code", 1000)
            return None
        assert message["type"] == "websocket.send", message
        text = message.get("text")
        return text if text is not None else message["bytes"].decode()

    async def close(self) -> None:
        if not self.comm.future.done():
            await self.comm.disconnect()


class _Remote:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.close_code: int | None = None

    async def send(self, text: str) -> None:
        await self.ws.send(text)

    async def recv(self) -> str | None:
        try:
            raw = await self.ws.recv()
        except websockets.ConnectionClosed as exc:
            self.close_code = exc.rcvd.code if exc.rcvd is not None else 1006
            return None
        return raw if isinstance(raw, str) else raw.decode()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()


class SocketClient:
    """The hub socket as an app uses it: auth, subscribe, requests answered by id, events."""

    def __init__(
        self, transport: _Transport, *, timeout: float = 5, on_frame: Callable[[Frame], bool] | None = None
    ) -> None:
        self.transport = transport
        self.timeout = timeout
        self.on_frame = on_frame
        self.inbox: list[Frame] = []
        self.pending: dict[str, asyncio.Future[Frame]] = {}
        self.closed = False
        self.error: BaseException | None = None  # why the reader stopped, if it failed
        self._ids = itertools.count(1)
        self._arrived = asyncio.Event()
        self.reader: asyncio.Task[None] = asyncio.create_task(self._read())

    # --- opening -------------------------------------------------------------

    @classmethod
    async def in_process(
        cls, token: str | None = None, *, origin: str = LOCAL_ORIGIN, path: str = "/ws/", **kwargs: Any
    ) -> SocketClient:
        """Connect to ``hub.asgi.application`` in this process (and authenticate when given a token)."""
        from hub.asgi import application

        comm = WebsocketCommunicator(application, path, headers=[(b"origin", origin.encode())] if origin else [])
        accepted, _ = await comm.connect()
        assert accepted, "the hub refused the socket at the handshake"
        client = cls(_InProcess(comm), **kwargs)
        if token is not None:
            await client.auth(token)
        return client

    @classmethod
    async def for_user(cls, user: Any, **kwargs: Any) -> SocketClient:
        """An in-process socket authenticated with a fresh token for ``user``."""
        from apps.accounts.services import token_issue

        token = await sync_to_async(lambda: token_issue(user=user).raw)()
        return await cls.in_process(token, **kwargs)

    @classmethod
    async def connect(
        cls, ws_url: str, token: str | None = None, *, origin: str, open_timeout: float = 10, **kwargs: Any
    ) -> SocketClient:
        """Connect to a real server (daphne) at ``ws_url``."""
        ws = await websockets.connect(ws_url, origin=Origin(origin), open_timeout=open_timeout)
        client = cls(_Remote(ws), **kwargs)
        if token is not None:
            try:
                await client.auth(token)
            except BaseException:
                await client.close()
                raise
        return client

    async def __aenter__(self) -> SocketClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- frames --------------------------------------------------------------

    async def _read(self) -> None:
        try:
            while (raw := await self.transport.recv()) is not None:
                self._dispatch(json.loads(raw))
        except Exception as exc:  # the application or the connection failed: waiters are told why
            self.error = exc
        finally:
            self.closed = True
            self._fail_pending(ConnectionError(f"socket closed ({self.transport.close_code}) {self.error!r}"))
            self._arrived.set()

    def _dispatch(self, frame: Frame) -> None:
        reply_to = frame.get("reply_to")
        if reply_to is not None and reply_to in self.pending:
            future = self.pending.pop(reply_to)
            if not future.done():
                future.set_result(frame)
            return
        if self.on_frame is not None and self.on_frame(frame):
            return
        self.inbox.append(frame)
        self._arrived.set()

    def _fail_pending(self, exc: BaseException) -> None:
        for future in self.pending.values():
            if not future.done():
                future.set_exception(exc)
        self.pending.clear()

    async def send(self, frame: Frame) -> None:
        """Send a frame without waiting for anything."""
        if self.closed:
            raise ConnectionError(f"socket closed ({self.transport.close_code})")
        await self.transport.send(json.dumps(frame))

    async def request(self, frame: Frame, *, expect: str | None = None, timeout: float | None = None) -> Frame:
        """Send ``frame`` (its ``id``, or a fresh one) and return the frame that replies to it."""
        frame_id = str(frame.get("id") or f"c{next(self._ids)}")
        future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self.pending[frame_id] = future
        try:
            await self.send({**frame, "id": frame_id})
            reply = await asyncio.wait_for(future, self.timeout if timeout is None else timeout)
        finally:
            self.pending.pop(frame_id, None)
        if expect is not None and reply.get("type") != expect:
            raise UnexpectedFrame(f"expected {expect!r} in reply to {frame.get('type')}, got {reply}")
        return reply

    async def auth(self, token: str, *, timeout: float | None = None) -> Frame:
        return await self.request({"type": "auth", "token": token}, expect="auth.ok", timeout=timeout)

    async def subscribe(self, topic: str, **kwargs: Any) -> Frame:
        return await self.request({"type": "subscribe", "topic": topic}, **kwargs)

    def signal(self, frame: Frame) -> Callable[[str], Awaitable[str]]:
        """An SDP offer -> answer function over ``frame`` (``media.publish`` / ``media.play``)."""

        async def offer(sdp: str) -> str:
            reply = await self.request({**frame, "sdp": sdp})
            assert reply["type"] == "reply" and reply["ok"], reply
            return str(reply["data"]["sdp"])

        return offer

    async def wait_for(
        self,
        match: Callable[[Frame], bool] | None = None,
        *,
        type: str | None = None,
        event: str | None = None,
        timeout: float | None = None,
    ) -> Frame:
        """Take the first kept frame that matches (by predicate, ``type`` and/or ``event``),
        waiting for one up to ``timeout``; frames that do not match stay in ``inbox``."""

        def matches(frame: Frame) -> bool:
            return (
                (type is None or frame.get("type") == type)
                and (event is None or frame.get("event") == event)
                and (match is None or match(frame))
            )

        loop = asyncio.get_running_loop()
        limit = self.timeout if timeout is None else timeout
        deadline = loop.time() + limit
        while True:
            for index, frame in enumerate(self.inbox):
                if matches(frame):
                    del self.inbox[index]
                    return frame
            if self.closed:
                raise ConnectionError(f"socket closed ({self.transport.close_code}) {self.error!r}; kept {self.inbox}")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"no matching frame within {limit}s; kept {self.inbox}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    async def receive(self, timeout: float | None = None) -> Frame:
        """The next frame that is not a reply to a request."""
        return await self.wait_for(timeout=timeout)

    async def receive_nothing(self, timeout: float = 0.1) -> bool:
        """True if no frame (other than replies) arrives within ``timeout``."""
        if self.inbox:
            return False
        await asyncio.sleep(timeout)
        return not self.inbox

    async def wait_closed(self, timeout: float | None = None) -> int | None:
        """Wait for the server to close the socket; its close code."""
        await asyncio.wait_for(asyncio.shield(self.reader), self.timeout if timeout is None else timeout)
        return self.transport.close_code

    async def close(self) -> None:
        self.reader.cancel()
        with contextlib.suppress(BaseException):
            await self.reader
        await self.transport.close()
        self.closed = True
        self._fail_pending(ConnectionError("closed"))

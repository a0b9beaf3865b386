"""A test client that behaves like the real apps: an outbox retried until
acked, reconnect with backoff, resume from the last seq, dedupe by seq."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from typing import Any

import websockets


class HubClient:
    def __init__(self, ws_url: str, origin: str, token: str, conversation: int) -> None:
        self.ws_url, self.origin, self.token, self.conversation = ws_url, origin, token, conversation
        self.ws: Any = None
        self.ids = itertools.count(1)
        self.pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.received: dict[int, dict[str, Any]] = {}  # seq -> message (dedupe by seq)
        self.deliveries = 0  # every im.message frame seen, duplicates included
        self.resyncs = 0
        self.reader: asyncio.Task[None] | None = None
        self.background: asyncio.Task[None] | None = None

    async def connect(self, attempts: int = 100) -> None:
        delay = 0.05
        for _ in range(attempts):
            try:
                self.ws = await websockets.connect(self.ws_url, origin=self.origin, open_timeout=2)
                self.reader = asyncio.create_task(self._read())
                await self.request({"type": "auth", "token": self.token}, expect="auth.ok")
                await self.request({"type": "subscribe", "topic": f"conv:{self.conversation}"})
                await self.sync()
                return
            except (TimeoutError, OSError, websockets.WebSocketException):
                await self.close()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.5)
        raise ConnectionError("could not connect")

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(BaseException):
                await self.reader
            self.reader = None
        if self.ws is not None:
            with contextlib.suppress(BaseException):
                await self.ws.close()
            self.ws = None
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(ConnectionError("closed"))
        self.pending.clear()

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                frame = json.loads(raw)
                reply_to = frame.get("reply_to")
                if reply_to is not None and reply_to in self.pending:
                    self.pending.pop(reply_to).set_result(frame)
                elif frame.get("type") == "event" and frame.get("event") == "im.message":
                    self.deliveries += 1
                    self.received.setdefault(frame["data"]["seq"], frame["data"])
                elif frame.get("type") == "resync":
                    self.resyncs += 1
                    self.background = asyncio.create_task(self.sync())
        except websockets.WebSocketException:
            pass
        finally:
            for fut in self.pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("closed"))

    async def request(self, frame: dict[str, Any], expect: str = "reply", timeout: float = 3) -> dict[str, Any]:
        frame_id = str(next(self.ids))
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[frame_id] = fut
        await self.ws.send(json.dumps({**frame, "id": frame_id}))
        reply = await asyncio.wait_for(fut, timeout)
        if reply["type"] != expect:
            raise RuntimeError(f"unexpected reply {reply}")
        return reply

    async def sync(self) -> None:
        """Fetch exactly what is missing after the highest contiguous seq."""
        while True:
            after = self.contiguous()
            page = await self.request(
                {"type": "im.sync", "conversation": self.conversation, "after_seq": after, "limit": 100}
            )
            for message in page["data"]["items"]:
                self.received.setdefault(message["seq"], message)
            if not page["data"]["has_more"]:
                return

    def contiguous(self) -> int:
        n = 0
        while n + 1 in self.received:
            n += 1
        return n

    async def send_reliably(self, text: str, client_msg_id: str, deadline: float = 30) -> dict[str, Any]:
        """Send until acked, reconnecting as needed (the app's outbox)."""
        loop = asyncio.get_running_loop()
        stop = loop.time() + deadline
        while loop.time() < stop:
            try:
                if self.ws is None:
                    await self.connect()
                reply = await self.request(
                    {
                        "type": "im.send",
                        "conversation": self.conversation,
                        "client_msg_id": client_msg_id,
                        "body": {"text": text},
                    },
                    timeout=2,
                )
                return reply["data"]
            except (TimeoutError, ConnectionError, OSError, websockets.WebSocketException):
                await self.close()
                await asyncio.sleep(0.05)
        raise TimeoutError(f"{client_msg_id} never acked")

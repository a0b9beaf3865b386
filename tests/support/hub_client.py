"""A test client that behaves like the real apps: an outbox retried until
acked, reconnect with backoff, resume from the last seq, dedupe by seq.
The socket itself is ``tests.support.socket_client.SocketClient``."""

from __future__ import annotations

import asyncio
from typing import Any

import websockets

from tests.support.socket_client import Frame, SocketClient


class HubClient:
    def __init__(self, ws_url: str, origin: str, token: str, conversation: int) -> None:
        self.ws_url, self.origin, self.token, self.conversation = ws_url, origin, token, conversation
        self.socket: SocketClient | None = None
        self.received: dict[int, dict[str, Any]] = {}  # seq -> message (dedupe by seq)
        self.deliveries = 0  # every im.message frame seen, duplicates included
        self.resyncs = 0
        self.background: asyncio.Task[None] | None = None

    @property
    def reader(self) -> asyncio.Task[None] | None:
        """The open socket's reader; done once the connection is lost."""
        return self.socket.reader if self.socket is not None else None

    def _on_frame(self, frame: Frame) -> bool:
        if frame.get("type") == "event" and frame.get("event") == "im.message":
            self.deliveries += 1
            self.received.setdefault(frame["data"]["seq"], frame["data"])
            return True
        if frame.get("type") == "resync":
            self.resyncs += 1
            self.background = asyncio.create_task(self.sync())
            return True
        return False

    async def connect(self, attempts: int = 100) -> None:
        delay = 0.05
        for _ in range(attempts):
            try:
                self.socket = await SocketClient.connect(
                    self.ws_url, origin=self.origin, open_timeout=2, timeout=3, on_frame=self._on_frame
                )
                await self.socket.auth(self.token)
                await self.socket.subscribe(f"conv:{self.conversation}", expect="reply")
                await self.sync()
                return
            except (TimeoutError, OSError, websockets.WebSocketException):
                await self.close()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.5)
        raise ConnectionError("could not connect")

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.close()
            self.socket = None

    async def request(self, frame: dict[str, Any], expect: str = "reply", timeout: float = 3) -> dict[str, Any]:
        if self.socket is None:
            raise ConnectionError("not connected")
        return await self.socket.request(frame, expect=expect, timeout=timeout)

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
                if self.socket is None:
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

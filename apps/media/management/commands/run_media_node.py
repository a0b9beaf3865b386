"""Run a media node: RTMP ingest, HTTP-FLV/HLS and recorders, commanded over the channel layer."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings
from django.core.management.base import BaseCommand

from apps.media.control import EVENTS_CHANNEL, node_channel
from apps.media.grants import room_authorizer
from hub.crypto import grant_key
from media_engine import MediaEngine
from media_engine.httpout import LiveHttpServer
from media_engine.live import LiveOutputs
from media_engine.node import MediaNode
from media_engine.rtmp import RtmpServer
from recordings.storage import manifest_key, recordings_root

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "运行媒体节点（RTMP 推流接入、HTTP-FLV/HLS 输出、录制），经 channel layer 接收命令"
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--name", default="node-1")
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--rtmp-port", type=int, default=1935)
        parser.add_argument("--http-port", type=int, default=8088)
        parser.add_argument("--events-channel", default=EVENTS_CHANNEL)

    def handle(self, *args: Any, **options: Any) -> None:
        asyncio.run(self._run(options))

    async def _run(self, options: dict[str, Any]) -> None:
        layer = get_channel_layer()
        assert layer is not None
        events_channel = options["events_channel"]
        pending: set[asyncio.Task[None]] = set()

        def emit(event: dict[str, Any]) -> None:
            task = asyncio.ensure_future(layer.send(events_channel, event))
            pending.add(task)
            task.add_done_callback(pending.discard)

        engine = MediaEngine(on_event=lambda kind, data: emit({"type": kind, "node": options["name"], **data}))
        node = MediaNode(
            engine,
            name=options["name"],
            grant_key=grant_key(),
            manifest_key=manifest_key(),
            recordings_root=recordings_root(),
            emit=emit,
        )
        rtmp = RtmpServer(engine, room_authorizer("publish"))
        http = LiveHttpServer(engine, room_authorizer("subscribe"), LiveOutputs(Path(settings.VAR_DIR) / "hls"))
        rtmp_port = await rtmp.start(options["host"], options["rtmp_port"])
        http_port = await http.start(options["host"], options["http_port"])
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        channel = node_channel(options["name"])

        async def run(command: dict[str, Any]) -> None:
            reply = await node.handle(command)
            if command.get("reply_to"):
                await layer.send(command["reply_to"], {"type": "media.reply", **reply})

        self.stdout.write(f"READY name={options['name']} rtmp={rtmp_port} http={http_port}", ending="\n")
        self.stdout.flush()
        try:
            while not stop.is_set():
                try:
                    command = await asyncio.wait_for(layer.receive(channel), 1.0)
                except TimeoutError:
                    continue
                # Each command on its own task: a player waiting for a publisher
                # must not hold up the heartbeat or the other rooms.
                task = asyncio.ensure_future(run(command))
                pending.add(task)
                task.add_done_callback(pending.discard)
        finally:
            await node.close()
            await rtmp.close()
            await http.close()
            await asyncio.gather(*pending, return_exceptions=True)

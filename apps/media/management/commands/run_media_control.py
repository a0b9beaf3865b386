"""The hub's side of remote media nodes: apply their events and watch their heartbeat."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.media.control import EVENTS_CHANNEL, listen_events, watch_node


class Command(BaseCommand):
    help = "接收媒体节点事件并维护录像记录，心跳检测节点失联（失联时封存其录像）"
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--node", action="append", default=[], help="要监视的节点名（可重复；默认 MEDIA_NODE）")
        parser.add_argument("--events-channel", default=EVENTS_CHANNEL)
        parser.add_argument("--interval", type=float, default=None, help="心跳间隔秒数")
        parser.add_argument("--misses", type=int, default=None, help="连续几次无应答判定失联")

    def handle(self, *args: Any, **options: Any) -> None:
        nodes = options["node"] or [settings.MEDIA_NODE]
        if settings.MEDIA_EMBEDDED and settings.MEDIA_NODE in nodes:
            raise CommandError("嵌入模式下媒体节点运行在 Web 进程内，无需单独监视")
        asyncio.run(self._run(nodes, options))

    async def _run(self, nodes: list[str], options: dict[str, Any]) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        tasks = [asyncio.ensure_future(listen_events(options["events_channel"], until=stop))]
        for node in nodes:
            tasks.append(
                asyncio.ensure_future(
                    watch_node(node, interval=options["interval"], misses=options["misses"], until=stop)
                )
            )
        self.stdout.write(f"READY nodes={','.join(nodes)}", ending="\n")
        self.stdout.flush()
        await asyncio.gather(*tasks)

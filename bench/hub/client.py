"""Load client for the hub benchmark: the same code drives the hub and the
baseline. Run by bench/hub/run.py; prints one JSON line per result.

Latency is measured with CLOCK_MONOTONIC, shared by all processes on the host.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson
import psutil
import websockets


def now_ns() -> int:
    return time.monotonic_ns()


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


class Conn:
    """One socket with request/reply bookkeeping and an event callback."""

    def __init__(self, url: str, origin: str, token: str, on_event: Callable[[dict[str, Any]], None] | None = None):
        self.url, self.origin, self.token = url, origin, token
        self.on_event = on_event
        self.ws: Any = None
        self.ids = itertools.count(1)
        self.pending: dict[str, tuple[asyncio.Future[dict[str, Any]], int]] = {}
        self.reader: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()

    async def open(self, conversation: int | None) -> None:
        self.closed.clear()
        self.ws = await websockets.connect(
            self.url, origin=self.origin, open_timeout=10, ping_interval=None, max_queue=None, compression=None
        )
        self.reader = asyncio.create_task(self._read())
        await self.request({"type": "auth", "token": self.token})
        if conversation is not None:
            await self.request({"type": "subscribe", "topic": f"conv:{conversation}"})

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                frame = orjson.loads(raw)
                reply_to = frame.get("reply_to")
                if reply_to is not None:
                    entry = self.pending.pop(reply_to, None)
                    if entry is not None and not entry[0].done():
                        entry[0].set_result(frame)
                elif self.on_event is not None:
                    self.on_event(frame)
        except (websockets.WebSocketException, OSError):
            pass
        finally:
            self.closed.set()
            for fut, _ in self.pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("closed"))
            self.pending.clear()

    async def request(self, frame: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
        fid = str(next(self.ids))
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[fid] = (fut, now_ns())
        await self.ws.send(orjson.dumps({**frame, "id": fid}).decode())
        return await asyncio.wait_for(fut, timeout)

    async def fire(self, frame: dict[str, Any]) -> None:
        await self.ws.send(orjson.dumps(frame).decode())

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            await asyncio.gather(self.reader, return_exceptions=True)


def server_cpu(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


async def poisson(rate: float, duration: float, action: Callable[[], Any]) -> int:
    """Call ``action`` at Poisson-distributed times; returns how many calls."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    end = start + duration
    next_at = start
    sent = 0
    while True:
        now = loop.time()
        if now >= end:
            return sent
        while next_at <= now:
            await action()
            sent += 1
            next_at += random.expovariate(rate)
        await asyncio.sleep(min(next_at, end) - loop.time())


# --- S2: six-person rooms, ephemeral room signals --------------------------------


async def scenario_rooms(args: argparse.Namespace, data: dict[str, Any]) -> None:
    rooms = data["rooms"][: args.rooms]
    latencies: list[float] = []
    dupes = 0

    # One receiver callback per connection so duplicates can be told apart.
    conns: list[tuple[Conn, int, int]] = []
    received: dict[int, set[tuple[int, int]]] = {}

    def make_cb(me: int) -> Callable[[dict[str, Any]], None]:
        mine = received.setdefault(me, set())

        def cb(frame: dict[str, Any]) -> None:
            nonlocal dupes
            if frame.get("event") != "im.signal":
                return
            payload = frame["data"]["data"]
            key = (payload["s"], payload["k"])
            if key in mine:
                dupes += 1
                return
            mine.add(key)
            latencies.append((now_ns() - payload["t"]) / 1e6)

        return cb

    idx = 0
    for room in rooms:
        for token in room["tokens"]:
            conn = Conn(args.url, args.origin, token, make_cb(idx))
            conns.append((conn, room["conversation"], idx))
            idx += 1
    for i in range(0, len(conns), 50):
        await asyncio.gather(*(c.open(cid) for c, cid, _ in conns[i : i + 50]))
    counter = itertools.count()
    members = len(rooms[0]["tokens"])

    for rate in args.rates:
        latencies.clear()
        for s in received.values():
            s.clear()
        dupes = 0
        sends_per_s = rate / (members - 1)
        cpu0 = server_cpu(args.server_pid)

        async def send_one() -> None:
            conn, cid, me = random.choice(conns)
            await conn.fire(
                {"type": "im.signal", "conversation": cid, "data": {"t": now_ns(), "s": me, "k": next(counter)}}
            )

        t0 = time.monotonic()
        sent = await poisson(sends_per_s, args.duration, send_one)
        elapsed = time.monotonic() - t0
        await asyncio.sleep(1.0)  # drain
        cpu = server_cpu(args.server_pid) - cpu0
        expected = sent * (members - 1)
        got = sum(len(s) for s in received.values())
        emit(
            {
                "scenario": "S2",
                "server": args.label,
                "rooms": len(rooms),
                "offered_deliveries_per_s": rate,
                "achieved_deliveries_per_s": round(got / elapsed),
                "delivered_pct": round(100 * got / expected, 3) if expected else 0,
                "duplicates": dupes,
                "p50_ms": round(pct(latencies, 0.50), 2),
                "p99_ms": round(pct(latencies, 0.99), 2),
                "server_cpu_pct": round(100 * cpu / (elapsed + 1.0), 1),
                "server_cpu_us_per_delivery": round(1e6 * cpu / got, 1) if got else None,
            }
        )
    await asyncio.gather(*(c.close() for c, _, _ in conns))


# --- S1: 1:1 chat, persisted ---------------------------------------------------------


async def scenario_chat(args: argparse.Namespace, data: dict[str, Any]) -> None:
    pairs = data["pairs"][: args.pairs]
    delivery: list[float] = []
    received: set[str] = set()

    def on_event(frame: dict[str, Any]) -> None:
        if frame.get("event") != "im.message":
            return
        text = frame["data"]["body"]["text"]
        if text in received:
            return
        received.add(text)
        delivery.append((now_ns() - int(text.split(":", 1)[0])) / 1e6)

    senders: list[tuple[Conn, int]] = []
    receivers: list[Conn] = []
    for pair in pairs:
        s = Conn(args.url, args.origin, pair["tokens"][0])
        r = Conn(args.url, args.origin, pair["tokens"][1], on_event)
        senders.append((s, pair["conversation"]))
        receivers.append(r)
    for i in range(0, len(pairs), 25):
        await asyncio.gather(*(s.open(None) for s, _ in senders[i : i + 25]))
        await asyncio.gather(
            *(r.open(p["conversation"]) for r, p in zip(receivers[i : i + 25], pairs[i : i + 25], strict=True))
        )
    counter = itertools.count()
    run_id = random.randrange(10**9)
    for rate in args.rates:
        acks: list[float] = []
        failures = 0
        delivery.clear()
        received.clear()
        tasks: set[asyncio.Task[None]] = set()
        cpu0 = server_cpu(args.server_pid)

        async def one(conn: Conn, cid: int, acks: list[float] = acks) -> None:
            nonlocal failures
            t = now_ns()
            k = next(counter)
            try:
                reply = await conn.request(
                    {
                        "type": "im.send",
                        "conversation": cid,
                        "client_msg_id": f"b{run_id}-{k}",
                        "body": {"text": f"{t}:{k}"},
                    }
                )
                if reply.get("type") != "reply":
                    failures += 1
                    return
                acks.append((now_ns() - t) / 1e6)
            except (TimeoutError, ConnectionError):
                failures += 1

        async def send_one(tasks: set[asyncio.Task[None]] = tasks) -> None:
            conn, cid = random.choice(senders)
            task = asyncio.create_task(one(conn, cid))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        t0 = time.monotonic()
        sent = await poisson(rate, args.duration, send_one)
        elapsed = time.monotonic() - t0
        await asyncio.gather(*list(tasks), return_exceptions=True)
        await asyncio.sleep(1.0)
        cpu = server_cpu(args.server_pid) - cpu0
        emit(
            {
                "scenario": "S1",
                "server": args.label,
                "pairs": len(pairs),
                "offered_msgs_per_s": rate,
                "acked_msgs_per_s": round(len(acks) / elapsed),
                "acked_pct": round(100 * len(acks) / sent, 3) if sent else 0,
                "delivered_pct": round(100 * len(received) / sent, 3) if sent else 0,
                "failures": failures,
                "ack_p50_ms": round(pct(acks, 0.5), 2),
                "ack_p99_ms": round(pct(acks, 0.99), 2),
                "delivery_p99_ms": round(pct(delivery, 0.99), 2),
                "server_cpu_pct": round(100 * cpu / (elapsed + 1.0), 1),
            }
        )
    await asyncio.gather(*(s.close() for s, _ in senders), *(r.close() for r in receivers))


# --- S4: idle sockets, heartbeats, restart ---------------------------------------------


async def scenario_idle(args: argparse.Namespace, data: dict[str, Any]) -> None:
    users = data["idle"][: args.sockets]
    heartbeat: list[float] = []
    conns = [Conn(args.url, args.origin, u["token"]) for u in users]

    async def open_one(conn: Conn, user: dict[str, Any]) -> None:
        await conn.open(user["conversation"])
        await conn.request({"type": "im.sync", "conversation": user["conversation"], "after_seq": 0})

    t0 = time.monotonic()
    for i in range(0, len(conns), 200):
        await asyncio.gather(*(open_one(c, u) for c, u in zip(conns[i : i + 200], users[i : i + 200], strict=True)))
    connect_s = time.monotonic() - t0
    emit({"event": "S4_connected", "server": args.label, "sockets": len(conns), "connect_s": round(connect_s, 2)})
    print("READY", flush=True)
    # Heartbeats: every socket pings every `interval` s, staggered.
    interval = args.heartbeat
    stop = asyncio.Event()

    async def beat(conn: Conn) -> None:
        await asyncio.sleep(random.uniform(0, interval))
        while not stop.is_set():
            t = now_ns()
            try:
                await conn.request({"type": "ping"}, timeout=5)
                heartbeat.append((now_ns() - t) / 1e6)
            except (TimeoutError, ConnectionError, websockets.WebSocketException):
                return
            await asyncio.sleep(interval)

    beats = [asyncio.create_task(beat(c)) for c in conns]
    await asyncio.sleep(args.duration)
    stop.set()
    emit(
        {
            "scenario": "S4",
            "server": args.label,
            "sockets": len(conns),
            "heartbeats": len(heartbeat),
            "heartbeat_p50_ms": round(pct(heartbeat, 0.5), 2),
            "heartbeat_p99_ms": round(pct(heartbeat, 0.99), 2),
        }
    )
    for b in beats:
        b.cancel()
    print("RESTART_NOW", flush=True)
    # The orchestrator kills and restarts the server; every socket reconnects
    # with jittered backoff and resumes (auth, subscribe, sync).
    first_close: list[float] = []
    resumed_at: list[float] = []

    async def resume(conn: Conn, user: dict[str, Any]) -> None:
        await conn.closed.wait()
        first_close.append(time.monotonic())
        attempt = 0
        while True:
            delay = min(0.25 * 2**attempt, 5.0) * random.uniform(0.5, 1.5)
            await asyncio.sleep(delay)
            attempt += 1
            try:
                await open_one(conn, user)
                resumed_at.append(time.monotonic())
                return
            except (OSError, TimeoutError, ConnectionError, websockets.WebSocketException):
                if conn.ws is not None:
                    await conn.ws.close()

    try:
        await asyncio.wait_for(asyncio.gather(*(resume(c, u) for c, u in zip(conns, users, strict=True))), 60)
    except TimeoutError:
        pass
    if first_close and resumed_at:
        start = min(first_close)
        done = sorted(r - start for r in resumed_at)
        need = int(len(conns) * 0.99)
        emit(
            {
                "scenario": "S4_restart",
                "server": args.label,
                "sockets": len(conns),
                "resumed": len(resumed_at),
                "p99_resumed_s": round(done[need - 1], 2) if len(done) >= need else None,
                "all_resumed_s": round(done[-1], 2),
            }
        )
    await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)


def emit(result: dict[str, Any]) -> None:
    print("RESULT " + json.dumps(result, ensure_ascii=False), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=["rooms", "chat", "idle"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--origin", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--label", required=True)
    parser.add_argument("--server-pid", type=int, required=True)
    parser.add_argument("--rates", type=float, nargs="*", default=[])
    parser.add_argument("--duration", type=float, default=8)
    parser.add_argument("--rooms", type=int, default=17)
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--sockets", type=int, default=5000)
    parser.add_argument("--heartbeat", type=float, default=5)
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with open(args.data) as f:
        data = json.load(f)
    runner = {"rooms": scenario_rooms, "chat": scenario_chat, "idle": scenario_idle}[args.scenario]
    asyncio.run(runner(args, data))
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()

"""Benchmark S5 (issue 13): concurrent timed sessions with 1 Hz countdown pushes.

    .venv/bin/python bench/timed/s5_sessions.py            # 1,000 sessions, 300 sockets, two phases, ~3 min
    .venv/bin/python bench/timed/s5_sessions.py --quick    # 100 sessions, 30 sockets, one short phase

The product's processes on PostgreSQL + Redis: ``daphne hub.asgi:application``
(its timed clock: ticks, warnings, hard stops) and a real ``manage.py run_huey``
worker (the task at each deadline, the per-minute sweep). The bench process
creates the sessions through ``apps.timed.services.session_start`` (deadlines
staggered over ``--spread`` seconds), holds ``--sockets`` hub sockets, each
subscribed to its user topic, which the sessions' events go to, and measures
per session:

- the hard stop: deadline -> ``ended_at`` in the database, and deadline ->
  ``timed.ended`` received on a socket;
- tick jitter: each ``timed.tick``'s receive time after the wall-clock second
  the clock woke for, and ticks missed (a running session should get one a second);
- CPU of the web and worker processes (per cent of one core over the phase);
- the limit: a bare ``loop.call_at`` timer in this process for the same deadlines.

Phase ``steady`` leaves everything alone; phase ``worker_restart`` SIGKILLs the
worker in the middle of the deadlines and starts another. Sessions have no media
room and no conversation (the stop ends the session, publishes and audits; closing
rooms is measured by the media benchmarks). Writes bench/timed/results.json
(results-quick.json for --quick) and prints the tables for docs/benchmarks.md.
Database: ``--db`` (default the timed_test database of the shared server, migrated
here); Redis db ``--redis`` (default 1; the huey queue there is flushed)."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
PY = sys.executable
VAR = ROOT / "var" / "bench" / "timed"
KIND = "bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0.0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return float(ordered[min(len(ordered), int(rank)) - 1])


def summary_ms(values: Sequence[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 1),
        "p99_ms": round(percentile(ms, 99), 1),
        "max_ms": round(max(ms), 1) if ms else 0.0,
        "within_1s": round(100 * sum(1 for v in values if v <= 1.0) / len(values), 2) if values else 0.0,
        "over_2s": sum(1 for v in values if v > 2.0),
    }


def product_env(args: argparse.Namespace, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "hub.settings",
        "HUB_ENV": "test",
        "DATABASE_URL": args.db,
        "REDIS_URL": args.redis,
        "HUB_VAR_DIR": str(VAR),
        "FAST_PASSWORD_HASHER": "1",
        "HUEY_IMMEDIATE": "0",
        "WS_ALLOWED_ORIGINS": f"http://127.0.0.1:{port}",
        "DEBUG": "0",
        "PYTHONUNBUFFERED": "1",
    }


class Proc:
    """A product process (daphne or the worker) with its CPU accounted across restarts."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str]) -> None:
        self.name, self.cmd, self.env = name, cmd, env
        self.proc: subprocess.Popen[bytes] | None = None
        self.ps: psutil.Process | None = None
        self.cpu_done = 0.0  # CPU seconds of instances that are gone
        self.log = VAR / f"{name}.log"
        self.log_offset = 0

    def start(self) -> None:
        self.log_offset = self.log.stat().st_size if self.log.exists() else 0
        handle = open(self.log, "ab")
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=self.env, stdout=handle, stderr=subprocess.STDOUT)
        handle.close()
        self.ps = psutil.Process(self.proc.pid)

    def cpu(self) -> float:
        if self.ps is None:
            return self.cpu_done
        try:
            t = self.ps.cpu_times()
            return self.cpu_done + t.user + t.system
        except psutil.NoSuchProcess:
            return self.cpu_done

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.cpu_done = self.cpu()
            self.proc.send_signal(sig)
            self.proc.wait(15)
        self.ps = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.cpu_done = self.cpu()
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.ps = None


def wait_ready(url: str, proc: Proc, timeout: float = 60) -> None:
    limit = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if (proc.proc is not None and proc.proc.poll() is not None) or time.monotonic() > limit:
            raise RuntimeError(f"{proc.name} did not start: see {proc.log}")
        time.sleep(0.2)


def wait_worker(proc: Proc, timeout: float = 60) -> None:
    start = proc.log_offset
    limit = time.monotonic() + timeout
    while True:
        text = proc.log.read_bytes()[start:].lower() if proc.log.exists() else b""
        if b"huey consumer started" in text or b"consumer started" in text:
            return
        if (proc.proc is not None and proc.proc.poll() is not None) or time.monotonic() > limit:
            raise RuntimeError(f"worker did not start: see {proc.log}")
        time.sleep(0.1)


def ensure_database(url: str) -> None:
    """Create the bench's database on its server when it does not exist yet."""
    from urllib.parse import urlparse

    import psycopg2

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    conn = psycopg2.connect(
        host=parsed.hostname, port=parsed.port or 5432, user=parsed.username or "postgres", dbname="postgres"
    )
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{name}"')
    conn.close()


# --- Django side (this process) -------------------------------------------------------


def django_setup(args: argparse.Namespace) -> None:
    os.environ.update({k: v for k, v in product_env(args, 0).items() if k not in ("WS_ALLOWED_ORIGINS",)})
    import django

    django.setup()
    from apps.timed.registry import register_owner

    register_owner(KIND)


def prepare_users(n: int) -> list[tuple[int, str]]:
    from apps.accounts.models import User
    from apps.accounts.roles import Role
    from apps.accounts.services import token_issue

    users = []
    for i in range(n):
        user, _ = User.objects.get_or_create(
            username=f"s5_{i}", defaults={"display_name": f"压测{i}", "role": Role.PATIENT}
        )
        users.append((user.pk, token_issue(user=user).raw))
    return users


def clean() -> None:
    from apps.timed.models import TimedSession

    TimedSession.objects.filter(owner_kind=KIND).delete()  # earlier runs


def create_sessions(phase: str, n: int, users: list[tuple[int, str]], lead: int, spread: int) -> list[dict[str, Any]]:
    """``n`` sessions whose deadlines are spread evenly over ``spread`` seconds from ``lead``
    seconds after the first is created (all are created before the first deadline)."""
    from apps.timed.services import session_start

    sessions = []
    t0 = time.time()
    for i in range(n):
        uid = users[i % len(users)][0]
        duration = max(1, round(t0 + lead + i * spread / n - time.time()))
        s = session_start(KIND, f"{phase}-{i}", duration, 0, topics=[f"user:{uid}"])
        sessions.append({"id": s.pk, "deadline": s.deadline.timestamp(), "created": s.started_at.timestamp()})
    return sessions


def ended_rows(ids: list[int]) -> dict[int, tuple[float | None, str]]:
    from apps.timed.models import TimedSession

    rows = TimedSession.objects.filter(pk__in=ids).values_list("pk", "ended_at", "end_reason")
    return {pk: (ended.timestamp() if ended else None, reason) for pk, ended, reason in rows}


# --- sockets ---------------------------------------------------------------------------


class Listener:
    def __init__(self) -> None:
        self.ended: dict[int, float] = {}  # session -> first timed.ended receipt
        self.ticks: dict[int, list[tuple[float, float]]] = defaultdict(list)  # session -> [(recv, server_now)]
        self.tasks: list[asyncio.Task[None]] = []
        self.sockets: list[Any] = []

    async def connect(self, ws_url: str, origin: str, users: list[tuple[int, str]]) -> None:
        import websockets

        async def one(uid: int, token: str) -> Any:
            ws = await websockets.connect(ws_url, origin=websockets.Origin(origin), open_timeout=30, max_queue=None)
            await ws.send(json.dumps({"type": "auth", "token": token, "id": "a"}))
            assert json.loads(await ws.recv())["type"] == "auth.ok"
            await ws.send(json.dumps({"type": "subscribe", "topic": f"user:{uid}", "id": "s"}))
            reply = json.loads(await ws.recv())
            assert reply.get("ok"), reply
            return ws

        for start in range(0, len(users), 50):
            batch = await asyncio.gather(*(one(uid, token) for uid, token in users[start : start + 50]))
            self.sockets.extend(batch)
        self.tasks = [asyncio.create_task(self.read(ws)) for ws in self.sockets]

    async def read(self, ws: Any) -> None:
        try:
            async for raw in ws:
                now = time.time()
                frame = json.loads(raw)
                event = frame.get("event")
                if event == "timed.tick":
                    data = frame["data"]
                    self.ticks[data["session_id"]].append((now, _ts(data["server_now"])))
                elif event == "timed.ended":
                    self.ended.setdefault(frame["data"]["session_id"], now)
        except Exception:
            pass

    async def close(self) -> None:
        for ws in self.sockets:
            await ws.close()
        for task in self.tasks:
            task.cancel()


def _ts(iso: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(iso).timestamp()


# --- one phase -----------------------------------------------------------------------------


async def phase(
    name: str,
    args: argparse.Namespace,
    users: list[tuple[int, str]],
    listener: Listener,
    web: Proc,
    worker: Proc,
) -> dict[str, Any]:
    from asgiref.sync import sync_to_async

    loop = asyncio.get_running_loop()
    cpu0 = {"web": web.cpu(), "worker": worker.cpu()}
    t0 = time.time()
    sessions = await sync_to_async(create_sessions)(name, args.sessions, users, args.lead, args.spread)
    created_in = time.time() - t0
    # The limit: a bare asyncio timer for each deadline, in this process.
    baseline: list[float] = []

    def fired(deadline: float) -> None:
        baseline.append(time.time() - deadline)

    for s in sessions:
        loop.call_at(loop.time() + (s["deadline"] - time.time()), fired, s["deadline"])
    last = max(s["deadline"] for s in sessions)
    restarted_at = None
    if name == "worker_restart":
        middle = min(s["deadline"] for s in sessions) + args.spread / 2
        await asyncio.sleep(max(0.0, middle - time.time()))
        restarted_at = time.time()
        worker.kill(signal.SIGKILL)
        worker.start()
        await asyncio.to_thread(wait_worker, worker)
        print(f"  worker SIGKILLed at +{restarted_at - t0:.1f}s, back after {time.time() - restarted_at:.1f}s")
    await asyncio.sleep(max(0.0, last - time.time()) + args.drain)
    wall = time.time() - t0
    cpu = {"web": web.cpu() - cpu0["web"], "worker": worker.cpu() - cpu0["worker"]}
    rows = await sync_to_async(ended_rows)([s["id"] for s in sessions])
    db_late, sock_late, not_ended, wrong_reason = [], [], 0, 0
    jitter: list[float] = []
    expected_ticks = received_ticks = 0
    for s in sessions:
        ended_at, reason = rows.get(s["id"], (None, ""))
        if ended_at is None:
            not_ended += 1
        else:
            db_late.append(ended_at - s["deadline"])
            if reason != "deadline":
                wrong_reason += 1
        if s["id"] in listener.ended:
            sock_late.append(listener.ended[s["id"]] - s["deadline"])
        ticks = listener.ticks.get(s["id"], [])
        received_ticks += len(ticks)
        # A tick each whole second after creation and before the deadline.
        expected_ticks += max(0, math.ceil(s["deadline"]) - math.floor(s["created"]) - 1)
        for recv, server_now in ticks:
            jitter.append(recv - math.floor(server_now))  # after the wall-clock second the clock woke for
    result = {
        "phase": name,
        "sessions": len(sessions),
        "sockets": len(users),
        "spread_s": args.spread,
        "created_in_s": round(created_in, 2),
        "wall_s": round(wall, 1),
        "not_ended": not_ended,
        "wrong_reason": wrong_reason,
        "stop_db": summary_ms(db_late),
        "stop_socket": summary_ms(sock_late),
        "ended_events_missing": len(sessions) - len(sock_late),
        "baseline_call_at": summary_ms(baseline),
        "tick_jitter": summary_ms(jitter),
        "ticks_received": received_ticks,
        "ticks_expected": expected_ticks,
        "cpu_web_pct": round(100 * cpu["web"] / wall, 1),
        "cpu_worker_pct": round(100 * cpu["worker"] / wall, 1),
        "worker_restarted_at_s": round(restarted_at - t0, 1) if restarted_at else None,
    }
    return result


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    from asgiref.sync import sync_to_async

    port = free_port()
    env = product_env(args, port)
    VAR.mkdir(parents=True, exist_ok=True)
    ensure_database(args.db)
    subprocess.run([PY, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    import redis
    from huey import RedisHuey

    RedisHuey("hub", url=args.redis).flush()
    redis.Redis.from_url(args.redis).delete("timed:clock:leader")
    await sync_to_async(clean)()
    users = await sync_to_async(prepare_users)(args.sockets)
    web = Proc("daphne", [PY, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "hub.asgi:application"], env)
    worker = Proc("worker", [PY, "manage.py", "run_huey"], env)
    web.start()
    worker.start()
    results = []
    listener = Listener()
    try:
        await asyncio.to_thread(wait_ready, f"http://127.0.0.1:{port}/readyz", web)
        await asyncio.to_thread(wait_worker, worker)
        await listener.connect(f"ws://127.0.0.1:{port}/ws/", f"http://127.0.0.1:{port}", users)
        await asyncio.sleep(2)  # the clock has led a few seconds
        for name in args.phases:
            print(f"phase {name}: {args.sessions} sessions over {args.spread}s, {len(users)} sockets")
            result = await phase(name, args, users, listener, web, worker)
            print(json.dumps(result, ensure_ascii=False))
            results.append(result)
    finally:
        await listener.close()
        web.stop()
        worker.stop()
    return results


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| phase | sessions | sockets | stop -> DB p50 / p99 / max ms | within 1 s | > 2 s | stop -> socket p50 / p99 / max ms "
        "| call_at limit p99 / max ms | tick jitter p50 / p99 / max ms | ticks received / expected "
        "| web CPU | worker CPU |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        db, so, base, tick = r["stop_db"], r["stop_socket"], r["baseline_call_at"], r["tick_jitter"]
        lines.append(
            f"| {r['phase']} | {r['sessions']} | {r['sockets']} | {db['p50_ms']} / {db['p99_ms']} / {db['max_ms']} "
            f"| {db['within_1s']}% | {db['over_2s']} | {so['p50_ms']} / {so['p99_ms']} / {so['max_ms']} "
            f"| {base['p99_ms']} / {base['max_ms']} | {tick['p50_ms']} / {tick['p99_ms']} / {tick['max_ms']} "
            f"| {r['ticks_received']} / {r['ticks_expected']} | {r['cpu_web_pct']}% | {r['cpu_worker_pct']}% |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 sessions, 30 sockets, one 10 s phase")
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--sockets", type=int, default=300)
    parser.add_argument("--lead", type=int, default=15, help="seconds from the first creation to the first deadline")
    parser.add_argument("--spread", type=int, default=60, help="deadlines spread over this many seconds")
    parser.add_argument("--drain", type=float, default=3.0)
    parser.add_argument("--phases", default="steady,worker_restart")
    parser.add_argument("--db", default="postgres://postgres@127.0.0.1:5432/timed_test")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/1")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    if args.quick:
        args.sessions, args.sockets, args.lead, args.spread, args.phases = 100, 30, 5, 10, "worker_restart"
    args.phases = [p for p in args.phases.split(",") if p]
    django_setup(args)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results = asyncio.run(main_async(args))
    out = (
        Path(args.out)
        if args.out
        else ROOT / "bench" / "timed" / ("results-quick.json" if args.quick else "results.json")
    )
    machine = {
        "cores": psutil.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "run": started,
    }
    out.write_text(json.dumps({"machine": machine, "results": results}, indent=2, ensure_ascii=False) + "\n")
    print(f"\nMachine: {machine}\n")
    print(table(results))
    bad = sum(r["not_ended"] + r["wrong_reason"] for r in results)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

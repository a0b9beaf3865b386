"""Commerce benchmark (issue 12): N concurrent checkouts, each paid through the sandbox
gateway (which posts its signed callback) and followed by 3 more copies of that signed
callback posted at once, against daphne on PostgreSQL + Redis with a real huey consumer.

    .venv/bin/python bench/commerce/checkout_callbacks.py            # 200 orders, ~1 min
    .venv/bin/python bench/commerce/checkout_callbacks.py --quick    # 20 orders (smoke run)

PostgreSQL: by default a private cluster started by the bench (PostgreSQL 15 from the
machine, ``initdb`` into /tmp, ``--max-connections``, stopped at the end), so the burst
neither takes the shared server's connections from others nor is refused by them;
``--pg shared`` uses the server on 127.0.0.1:5432 (``bench_commerce`` database).
Redis: db 4 (flushed). Writes bench/commerce/results.json, prints the tables for
docs/benchmarks.md and exits 1 when any correctness count is wrong."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import pwd
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
PY = sys.executable
DB_NAME = "bench_commerce"
REDIS_URL = "redis://127.0.0.1:6379/4"
VAR = ROOT / "var" / "bench" / "commerce"
SETTINGS = "bench.commerce.settings"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of ``values``; 0.0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n * q / 100)
    return float(ordered[min(len(ordered), int(rank)) - 1])


# --- PostgreSQL ------------------------------------------------------------------------


class PrivatePostgres:
    """A throwaway PostgreSQL 15 cluster (same binaries and defaults as the shared one)."""

    BIN = Path("/usr/lib/postgresql/15/bin")

    def __init__(self, max_connections: int) -> None:
        self.max_connections = max_connections
        self.port = free_port()
        self.dir = Path(f"/tmp/bench-commerce-pg-{os.getpid()}")
        self.postmaster: psutil.Process | None = None

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}"

    def _as_postgres(self, *cmd: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *cmd], check=True, stdout=subprocess.DEVNULL)

    def start(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(mode=0o700)
        pg = pwd.getpwnam("postgres")
        os.chown(self.dir, pg.pw_uid, pg.pw_gid)
        self._as_postgres(
            str(self.BIN / "initdb"), "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres", "-E", "UTF8",
            "--locale=C.UTF-8", "--no-sync",
        )  # fmt: skip
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.dir} "
            f"-c max_connections={self.max_connections} -c shared_buffers=128MB"
        )
        self._as_postgres(
            str(self.BIN / "pg_ctl"), "-D", str(self.dir / "data"), "-l", str(self.dir / "log"), "-w", "-o", options,
            "start",
        )  # fmt: skip
        pid = int((self.dir / "data" / "postmaster.pid").read_text().split()[0])
        self.postmaster = psutil.Process(pid)

    def cpu_seconds(self) -> float:
        """CPU of the postmaster, its live backends and the backends already gone (reaped)."""
        if self.postmaster is None:
            return 0.0
        t = self.postmaster.cpu_times()
        total = t.user + t.system + t.children_user + t.children_system
        for child in self.postmaster.children():
            try:
                c = child.cpu_times()
                total += c.user + c.system
            except psutil.NoSuchProcess:
                pass
        return float(total)

    def stop(self) -> None:
        if self.postmaster is not None:
            self._as_postgres(str(self.BIN / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")
            self.postmaster = None
        shutil.rmtree(self.dir, ignore_errors=True)


class ConnectionSampler(threading.Thread):
    """The peak number of server connections to the bench database (pg_stat_activity)."""

    def __init__(self, server_url: str) -> None:
        super().__init__(daemon=True)
        self.server_url = server_url
        self.peak = 0
        self.waits: Counter[str] = Counter()  # backend samples by state / wait event
        self.lock_queries: Counter[str] = Counter()  # backend samples waiting on a lock, by statement
        self._halt = threading.Event()

    def run(self) -> None:
        import psycopg2

        conn = psycopg2.connect(f"{self.server_url}/postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            while not self._halt.is_set():
                cur.execute(
                    "SELECT state, wait_event_type, wait_event, left(query, 70) FROM pg_stat_activity"
                    " WHERE datname = %s",
                    [DB_NAME],
                )
                rows = cur.fetchall()
                self.peak = max(self.peak, len(rows))
                for state, wait_type, wait, query in rows:
                    self.waits[f"{state} {wait_type or '-'}:{wait or '-'}"] += 1
                    if wait_type == "Lock":
                        self.lock_queries[query] += 1
                time.sleep(0.02)
        conn.close()

    def stop(self) -> int:
        self._halt.set()
        self.join(5)
        return self.peak


# --- the product's processes -------------------------------------------------------------


def product_env(server_url: str, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "HUB_ENV": "test",
        "DEBUG": "0",
        "DATABASE_URL": f"{server_url}/{DB_NAME}",
        "REDIS_URL": REDIS_URL,
        "HUB_VAR_DIR": str(VAR),
        "MEDIA_EMBEDDED": "0",
        "PAYMENTS_SANDBOX": "1",
        "PAYMENTS_SANDBOX_DIR": str(VAR / "payments_sandbox"),
        "PAYMENTS_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        # The gateway posts its callbacks from its own thread in daphne, on WeChat's schedule.
        "PAYMENTS_SANDBOX_DELIVERY": "thread",
        "LOG_LEVEL": "WARNING",
    }


def prepare(server_url: str, env: dict[str, str], n: int) -> list[dict[str, Any]]:
    """A fresh, migrated database; then n patient accounts with a 就诊人 and a token each,
    made by the product's services in this process (Django on the bench settings)."""
    import psycopg2

    admin = psycopg2.connect(f"{server_url}/postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        cur.execute(f"CREATE DATABASE {DB_NAME}")
    admin.close()
    shutil.rmtree(VAR / "payments_sandbox", ignore_errors=True)
    subprocess.run([PY, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    os.environ.update(env)
    import django

    django.setup()
    import datetime as dt

    import redis

    from apps.accounts.idcard import make_id_number
    from apps.accounts.models import User
    from apps.accounts.roles import Role
    from apps.accounts.services import patient_add, token_issue
    from apps.commerce.payments.sandbox import gateway

    redis.Redis.from_url(REDIS_URL).flushdb()
    gateway()  # the sandbox keys, shared with daphne through PAYMENTS_SANDBOX_DIR
    buyers = []
    for i in range(n):
        user = User.objects.create_user(username=f"bench_p{i}", display_name=f"压测患者{i}", role=Role.PATIENT)
        user.set_phone(f"139{i:08d}")
        user.save()
        patient = patient_add(
            owner=user,
            name=f"压测{i:03d}",
            id_number=make_id_number("440106", dt.date(1980 + i % 30, 1 + i % 12, 1 + i % 28), f"{i % 1000:03d}"),
            phone="",
            relation="self",
        )
        buyers.append({"token": token_issue(user=user).raw, "patient_id": patient.pk})
    return buyers


class Proc:
    def __init__(self, name: str, cmd: list[str], env: dict[str, str]) -> None:
        self.name = name
        log = open(VAR / f"{name}.log", "wb")
        self.popen = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.ps = psutil.Process(self.popen.pid)

    def cpu_seconds(self) -> float:
        t = self.ps.cpu_times()
        return float(t.user + t.system)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def wait_healthy(base: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{base}/healthz", timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("daphne did not start (var/bench/commerce/daphne.log)")


# --- the load ----------------------------------------------------------------------------


class Meter:
    """Latency (ms) and answers per kind of request."""

    def __init__(self) -> None:
        self.ms: dict[str, list[float]] = {}
        self.status: dict[str, Counter[str]] = {}

    def add(self, kind: str, started: float, status: str) -> None:
        self.ms.setdefault(kind, []).append((time.perf_counter() - started) * 1000)
        self.status.setdefault(kind, Counter())[status] += 1

    def summary(self, kind: str) -> dict[str, Any]:
        v = self.ms.get(kind, [])
        return {
            "requests": len(v),
            "p50_ms": round(percentile(v, 50), 1),
            "p95_ms": round(percentile(v, 95), 1),
            "p99_ms": round(percentile(v, 99), 1),
            "max_ms": round(max(v), 1) if v else 0.0,
            "answers": dict(self.status.get(kind, {})),
        }


def _answer(r: httpx.Response) -> str:
    """The status, or ``500-FAIL`` for WeChat's refusal answer (a notice refused, nothing
    recorded) as against a 500 from an error in the server."""
    if r.status_code == 500 and b'"FAIL"' in r.content:
        return "500-FAIL"
    return str(r.status_code)


async def drive(
    base: str,
    buyers: list[dict[str, Any]],
    serial: list[dict[str, Any]],
    dupes: int,
    resend_every: int,
    on_burst_start: Callable[[], None],
    on_burst_end: Callable[[], None],
) -> dict[str, Any]:
    """The burst (every checkout at once, then every pay with its duplicate callbacks at
    once), then, once the gateway's queue is empty, the ``serial`` buyers one order at a
    time: the same requests without contention."""
    from apps.commerce.payments.sandbox import gateway
    from bench.commerce.kind import KIND

    gw = gateway()
    meter = Meter()
    errors: list[str] = []
    everyone = buyers + serial
    # One small client per buyer, as each phone has its own connections: one shared pool
    # of ~1,000 connections cost httpcore's pool more CPU per request than the server
    # spent (its scans grow with the connections), and the load client set the pace.
    width = max(2, dupes)
    limits = httpx.Limits(max_connections=width, max_keepalive_connections=width)
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(httpx.AsyncClient(base_url=base, limits=limits, timeout=120.0))
            for _ in everyone
        ]
        n = len(buyers)
        resends = [i for i in range(n) if i % resend_every == 0]
        # Keep-alive connections opened before the burst: the figures are the server's,
        # not a TCP accept storm on Twisted's listen backlog of 50.
        await asyncio.gather(*(c.get("/healthz") for c in clients for _ in range(width)))
        on_burst_start()
        keys = [f"bench-{i}-{secrets.token_hex(8)}" for i in range(len(everyone))]

        async def checkout(i: int, tag: str = "") -> dict[str, Any] | None:
            body = {
                "patient_id": everyone[i]["patient_id"],
                "items": [{"kind": KIND, "ref": f"r{i}", "quantity": 1}],
                "client_key": keys[i],
                "channel": "sandbox",
            }
            headers = {"Authorization": f"Bearer {everyone[i]['token']}"}
            started = time.perf_counter()
            r = await clients[i].post("/api/v1/commerce/orders", json=body, headers=headers)
            meter.add(f"checkout{tag}", started, _answer(r))
            if r.status_code != 201:
                errors.append(f"checkout {i}: {r.status_code} {r.text[:200]}")
                return None
            return dict(r.json())

        t0 = time.perf_counter()
        answers = await asyncio.gather(*(checkout(i) for i in range(n)), *(checkout(i) for i in resends))
        checkout_wall = time.perf_counter() - t0
        orders = list(answers[:n])
        idempotent_mismatch = 0
        for j, i in enumerate(resends):
            again, first = answers[n + j], orders[i]
            if again is None or first is None or again["order_no"] != first["order_no"]:
                idempotent_mismatch += 1

        async def pay_and_repeat(i: int, order: dict[str, Any], tag: str = "") -> None:
            client = clients[i]
            params = order["pay_params"]
            started = time.perf_counter()
            r = await client.post(f"/sandbox/pay/trades/{params['sandboxTrade']}/pay", json=params)
            meter.add(f"pay{tag}", started, _answer(r))
            if r.status_code != 200:
                errors.append(f"pay {order['order_no']}: {r.status_code} {r.text[:200]}")
                return
            notification_id = r.json()["callbacks"][0]["notification_id"]
            # The same notification (its id) as the gateway's own callback, each copy freshly
            # signed and encrypted, as WeChat Pay re-sends it; posted together while the
            # gateway's copy is on its way.
            copies = await asyncio.to_thread(
                lambda: [gw.notification_for(order["order_no"], notification_id=notification_id) for _ in range(dupes)]
            )

            async def post(headers: dict[str, str], body: bytes) -> None:
                started = time.perf_counter()
                a = await client.post("/api/v1/commerce/notify/sandbox", content=body, headers=headers)
                meter.add(f"callback{tag}", started, _answer(a))
                if a.status_code != 204:
                    errors.append(f"callback {order['order_no']}: {a.status_code} {a.text[:200]}")

            await asyncio.gather(*(post(h, b) for h, b in copies))

        t1 = time.perf_counter()
        await asyncio.gather(*(pay_and_repeat(i, o) for i, o in enumerate(orders) if o is not None))
        pay_wall = time.perf_counter() - t1
        on_burst_end()

        def queue_empty() -> bool:
            return not any(e["status"] in {"pending", "sending"} for e in gw.store.callbacks())

        for _ in range(240):
            if await asyncio.to_thread(queue_empty):
                break
            await asyncio.sleep(0.25)
        for i in range(n, len(everyone)):
            one = await checkout(i, "_serial")
            if one is not None:
                orders.append(one)
                await pay_and_repeat(i, one, "_serial")
                await asyncio.sleep(0.2)  # the gateway's own copy, before the next order
    return {
        "orders": [o for o in orders if o is not None],
        "idempotent_resends": len(resends),
        "idempotent_mismatch": idempotent_mismatch,
        "checkout_wall_s": checkout_wall,
        "pay_wall_s": pay_wall,
        "meter": meter,
        "errors": errors,
    }


def wait_settled(n_orders: int, timeout: float) -> dict[str, Any]:
    """Until every gateway callback is delivered and every order completed (or the timeout)."""
    from apps.commerce.models import Order
    from apps.commerce.payments.sandbox import gateway

    gw = gateway()
    started = time.monotonic()
    callbacks_done = None
    while time.monotonic() - started < timeout:
        entries = gw.store.callbacks()
        pending = [e for e in entries if e["status"] in {"pending", "sending"}]
        if not pending and callbacks_done is None:
            callbacks_done = time.monotonic() - started
        completed = Order.objects.filter(status=Order.Status.COMPLETED).count()
        if callbacks_done is not None and completed >= n_orders:
            return {"callbacks_drained_s": callbacks_done, "completed_s": time.monotonic() - started}
        time.sleep(0.25)
    return {"callbacks_drained_s": callbacks_done, "completed_s": None}


# --- the checks --------------------------------------------------------------------------


def verify(expected_orders: int) -> dict[str, Any]:
    """Correctness counts read from the database, the gateway's store and Redis."""
    import redis
    from django.db.models import Count, Q

    from apps.audit.models import AuditEvent
    from apps.commerce.models import Fulfilment, LedgerEntry, Order, OrderItem, Payment
    from apps.commerce.payments.sandbox import gateway
    from apps.commerce.selectors import ledger_balance
    from bench.commerce.kind import PAID_KEY

    orders = Order.objects.annotate(
        succeeded=Count("payments", filter=Q(payments__status=Payment.Status.SUCCEEDED), distinct=True),
        payments_all=Count("payments", distinct=True),
        charges=Count("ledger", filter=Q(ledger__kind=LedgerEntry.Kind.CHARGE), distinct=True),
        money_in=Count("ledger", filter=Q(ledger__kind=LedgerEntry.Kind.PAYMENT), distinct=True),
    )
    rows = list(
        orders.values("pk", "order_no", "status", "paid_fen", "succeeded", "payments_all", "charges", "money_in")
    )
    by_no = {r["order_no"]: r for r in rows}
    paid_states = {Order.Status.PAID, Order.Status.FULFILLING, Order.Status.COMPLETED}
    gw = gateway()
    trades = [t for t in gw.store.trades() if t["state"] in {"SUCCESS", "REFUND"}]
    local_tx = dict(
        Payment.objects.filter(status=Payment.Status.SUCCEEDED).values_list("order__order_no", "transaction_id")
    )
    lost = [
        t["out_trade_no"]
        for t in trades
        if t["out_trade_no"] not in by_no
        or by_no[t["out_trade_no"]]["status"] not in paid_states
        or local_tx.get(t["out_trade_no"]) != t["transaction_id"]
    ]
    double = [r["order_no"] for r in rows if r["succeeded"] > 1 or r["money_in"] > 1 or r["charges"] > 1]
    unbalanced = 0
    for o in Order.objects.all():
        b = ledger_balance(o)
        if b["balance"] != 0 or b["received"] != o.paid_fen - o.refunded_fen:
            unbalanced += 1
    items = list(
        OrderItem.objects.annotate(
            paid_rows=Count("fulfilments", filter=Q(fulfilments__event=Fulfilment.Event.PAID)),
            done_rows=Count(
                "fulfilments",
                filter=Q(fulfilments__event=Fulfilment.Event.PAID, fulfilments__status=Fulfilment.Status.DONE),
            ),
        ).values("pk", "paid_rows", "done_rows")
    )
    handler_calls = {int(k): int(v) for k, v in redis.Redis.from_url(REDIS_URL).hgetall(PAID_KEY).items()}
    callbacks = gw.store.callbacks()
    return {
        "orders": len(rows),
        "orders_expected": expected_orders,
        "orders_completed": sum(1 for r in rows if r["status"] == Order.Status.COMPLETED),
        "payments": sum(r["payments_all"] for r in rows),
        "payments_succeeded": sum(r["succeeded"] for r in rows),
        "orders_with_one_charge": sum(1 for r in rows if r["charges"] == 1 and r["money_in"] == 1),
        "items": len(items),
        "items_with_one_fulfilment": sum(1 for i in items if i["paid_rows"] == 1 and i["done_rows"] == 1),
        "items_handler_called_once": sum(1 for i in items if handler_calls.get(i["pk"]) == 1),
        "handler_calls": sum(handler_calls.values()),
        "double_charges": len(double),
        "paid_at_gateway": len(trades),
        "lost_payments": len(lost),
        "unbalanced_ledgers": unbalanced,
        "notices_refused": AuditEvent.objects.filter(action="commerce.notice_refused").count(),
        # Each is one turn on the audit chain's head row (a lock held to the writer's commit).
        "audit_events_by_action": dict(
            AuditEvent.objects.values_list("action").annotate(n=Count("id")).order_by("-n").values_list("action", "n")
        ),
        "gateway_callbacks": len(callbacks),
        "gateway_callbacks_delivered": sum(1 for e in callbacks if e["status"] == "delivered"),
        # Not first try: the gateway's 5 s timeout passed (or it got a non-2xx) and it re-sent 15 s later.
        "gateway_first_attempts": dict(Counter(e["attempts"][0]["result"] for e in callbacks if e["attempts"])),
        "gateway_callbacks_delivered_first_try": sum(
            1 for e in callbacks if e["status"] == "delivered" and len(e["attempts"]) == 1
        ),
        "examples": {"double": double[:5], "lost": lost[:5]},
    }


def failures(c: dict[str, Any], drive_out: dict[str, Any]) -> list[str]:
    n = c["orders_expected"]
    wrong = []
    checks = {
        "orders": c["orders"] == n,
        "orders_completed": c["orders_completed"] == n,
        "payments (= orders)": c["payments"] == n and c["payments_succeeded"] == n,
        "one charge per order": c["orders_with_one_charge"] == n,
        "one fulfilment per item": c["items_with_one_fulfilment"] == c["items"] == n,
        "on_paid once per item": c["items_handler_called_once"] == n and c["handler_calls"] == n,
        "double charges": c["double_charges"] == 0,
        "paid at the gateway": c["paid_at_gateway"] == n,
        "lost payments": c["lost_payments"] == 0,
        "ledgers balanced": c["unbalanced_ledgers"] == 0,
        "notices refused": c["notices_refused"] == 0,
        "gateway callbacks delivered": c["gateway_callbacks_delivered"] == c["gateway_callbacks"] == n,
        "idempotent resends": drive_out["idempotent_mismatch"] == 0,
        "no failed requests": not drive_out["errors"],
    }
    for name, ok in checks.items():
        if not ok:
            wrong.append(name)
    return wrong


# --- main --------------------------------------------------------------------------------


def cpu_pressure_seconds() -> float:
    try:
        some = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except OSError:
        return 0.0
    return int(some.rsplit("total=", 1)[1]) / 1e6


def cpu_pct(before: float, after: float, wall: float) -> float:
    return round(100 * (after - before) / wall, 1) if wall > 0 else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--serial", type=int, default=10, help="orders one at a time after the burst")
    parser.add_argument("--quick", action="store_true", help="20 orders (a smoke run)")
    parser.add_argument("--dupes", type=int, default=3, help="extra copies of each signed callback")
    parser.add_argument("--resend-every", type=int, default=10, help="re-send every k-th checkout with its key")
    parser.add_argument("--pg", choices=["private", "shared"], default="private")
    parser.add_argument("--max-connections", type=int, default=500, help="of the private cluster")
    parser.add_argument("--out", default=str(ROOT / "bench" / "commerce" / "results.json"))
    parser.add_argument(
        "--experiment-unchained-audit",
        action="store_true",
        help="not the product: audit rows without the chain's head row lock (bench/commerce/unchained_audit.py)",
    )
    args = parser.parse_args()
    n = 20 if args.quick else args.orders
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # ~1,000 sockets each side
    VAR.mkdir(parents=True, exist_ok=True)
    pg = PrivatePostgres(args.max_connections) if args.pg == "private" else None
    server_url = pg.url if pg else "postgres://postgres@127.0.0.1:5432"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = product_env(server_url, port)
    if args.experiment_unchained_audit:
        env["BENCH_UNCHAINED_AUDIT"] = "1"
    procs: list[Proc] = []
    load = os.getloadavg()
    try:
        if pg:
            print(f"private PostgreSQL on port {pg.port} (max_connections={pg.max_connections}) ...", flush=True)
            pg.start()
        print(f"preparing {DB_NAME} and {n} patient accounts ...", flush=True)
        everyone = prepare(server_url, env, n + args.serial)
        buyers, serial = everyone[:n], everyone[n:]
        huey = Proc("huey", [PY, "manage.py", "run_huey"], env)
        procs.append(huey)
        daphne = Proc("daphne", [PY, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "hub.asgi:application"], env)
        procs.append(daphne)
        wait_healthy(base)
        sampler = ConnectionSampler(server_url)
        sampler.start()
        me = psutil.Process()
        main_tid = threading.main_thread().native_id

        def snapshot() -> tuple[float, ...]:
            """daphne, huey, PostgreSQL, wall; the machine's busy CPU-seconds (all cores), this
            load client's CPU, the seconds some task waited for a CPU (PSI)."""
            t, c = psutil.cpu_times(), me.cpu_times()
            busy = t.user + t.nice + t.system + t.irq + t.softirq + getattr(t, "steal", 0.0)
            loop = next((x.user_time + x.system_time for x in me.threads() if x.id == main_tid), 0.0)
            return (
                daphne.cpu_seconds(), huey.cpu_seconds(), pg.cpu_seconds() if pg else 0.0, time.perf_counter(),
                busy, c.user + c.system, cpu_pressure_seconds(), loop,
            )  # fmt: skip

        print(f"driving {n} checkouts (+{len(range(0, n, args.resend_every))} re-sent), then pay + {args.dupes} "
              "duplicate callbacks each ...", flush=True)  # fmt: skip
        marks: list[tuple[float, ...]] = []

        def mark() -> None:
            marks.append(snapshot())

        out = asyncio.run(drive(base, buyers, serial, args.dupes, args.resend_every, mark, mark))
        cpu0, cpu1 = marks[0], marks[1]
        settled = wait_settled(len(out["orders"]), timeout=120)
        cpu2 = snapshot()
        peak_connections = sampler.stop()
        counts = verify(n + args.serial)
        daphne_log = (VAR / "daphne.log").read_text(errors="replace")
        server_errors = daphne_log.count("Traceback")
    finally:
        for p in reversed(procs):
            p.stop()
        if pg:
            pg.stop()
    wall = cpu1[3] - cpu0[3]
    meter: Meter = out["meter"]
    results = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": psutil.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30),
            "python": platform.python_version(),
            "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
            "load_before": [round(x, 2) for x in load],
            "load_after": [round(x, 2) for x in os.getloadavg()],
        },
        "setup": {
            "orders": n,
            "serial_orders": args.serial,
            "dupes_per_order": args.dupes,
            "idempotent_resends": out["idempotent_resends"],
            "postgres": f"private cluster, max_connections={args.max_connections}" if pg else "shared 127.0.0.1:5432",
            "huey": "run_huey consumer (Redis, 2 worker threads)",
            "experiment": "unchained audit (not the product)" if args.experiment_unchained_audit else None,
        },
        "latency": {
            k: meter.summary(k)
            for k in ("checkout", "pay", "callback", "checkout_serial", "pay_serial", "callback_serial")
        },
        "wall_s": {
            "checkouts": round(out["checkout_wall_s"], 2),
            "pay_and_callbacks": round(out["pay_wall_s"], 2),
            "gateway_callbacks_drained_after": settled["callbacks_drained_s"],
            "all_completed_after": settled["completed_s"],
        },
        "cpu_pct_of_one_core": {
            "daphne_load": cpu_pct(cpu0[0], cpu1[0], wall),
            "huey_load": cpu_pct(cpu0[1], cpu1[1], wall),
            "postgres_load": cpu_pct(cpu0[2], cpu1[2], wall) if pg else None,
            "load_client": cpu_pct(cpu0[5], cpu1[5], wall),
            # Its event loop thread alone (near 100%: the client, not the server, sets the pace).
            "load_client_loop": cpu_pct(cpu0[7], cpu1[7], wall),
            # The whole machine during the burst (both cores: up to 200%), and the part of it
            # that was none of the above (other sessions on the shared machine).
            "machine_busy": cpu_pct(cpu0[4], cpu1[4], wall),
            "machine_others": round(
                cpu_pct(cpu0[4], cpu1[4], wall) - sum(cpu_pct(cpu0[i], cpu1[i], wall) for i in (0, 1, 2, 5)), 1
            ),
            # Share of the burst during which some runnable task waited for a CPU (/proc/pressure/cpu).
            "cpu_pressure_some": cpu_pct(cpu0[6], cpu1[6], wall),
            # daphne CPU per HTTP request it served in the burst (ours plus the gateway's callbacks).
            "daphne_cpu_ms_per_request_burst": round(
                1000
                * (cpu1[0] - cpu0[0])
                / max(1, sum(meter.summary(k)["requests"] for k in ("checkout", "pay", "callback")) + n),
                1,
            ),
            "cpu_s_burst": {
                name: round(cpu1[i] - cpu0[i], 2)
                for name, i in (("daphne", 0), ("huey", 1), ("postgres", 2), ("client", 5))
            },
            # From the burst's start to everything settled (the serial orders included).
            "daphne_cpu_s_total": round(cpu2[0] - cpu0[0], 2),
            "huey_cpu_s_total": round(cpu2[1] - cpu0[1], 2),
            "postgres_cpu_s_total": round(cpu2[2] - cpu0[2], 2) if pg else None,
        },
        "peak_db_connections": peak_connections,
        # Where the bench database's backends were, sampled every 20 ms (the sampler's own excluded).
        "db_backend_samples": dict(sampler.waits.most_common(12)),
        "db_lock_wait_samples_by_statement": dict(sampler.lock_queries.most_common(6)),
        "server_tracebacks": server_errors,
        "counts": counts,
        "errors": out["errors"][:20],
    }
    wrong = failures(counts, out)
    if server_errors:
        wrong.append("server tracebacks (var/bench/commerce/daphne.log)")
    results["failed_checks"] = wrong
    Path(args.out).write_text(json.dumps(results, ensure_ascii=False, indent=1))
    print_tables(results)
    print(f"wrote {args.out}")
    if wrong:
        print("FAILED:", ", ".join(wrong))
        return 1
    return 0


def print_tables(r: dict[str, Any]) -> None:
    print("\n| request | count | p50 ms | p95 ms | p99 ms | max ms | answers |")
    print("|---|---|---|---|---|---|---|")
    for kind, s in r["latency"].items():
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(s["answers"].items()))
        print(
            f"| {kind} | {s['requests']} | {s['p50_ms']} | {s['p95_ms']} | {s['p99_ms']} | {s['max_ms']} | {answers} |"
        )
    c = r["counts"]
    print("\n| check | value |")
    print("|---|---|")
    for key in (
        "orders", "orders_completed", "payments", "payments_succeeded", "orders_with_one_charge", "items",
        "items_with_one_fulfilment", "items_handler_called_once", "double_charges", "paid_at_gateway",
        "lost_payments", "unbalanced_ledgers", "notices_refused", "gateway_callbacks", "gateway_callbacks_delivered",
        "gateway_callbacks_delivered_first_try", "gateway_first_attempts",
    ):  # fmt: skip
        print(f"| {key} | {c[key]} |")
    print(f"\nwall: {r['wall_s']}\ncpu: {r['cpu_pct_of_one_core']}\npeak db connections: {r['peak_db_connections']}")
    print(f"db backend samples: {r['db_backend_samples']}")
    print(f"lock waits by statement: {r['db_lock_wait_samples_by_statement']}")


if __name__ == "__main__":
    sys.exit(main())

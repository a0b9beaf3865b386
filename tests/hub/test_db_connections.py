"""PostgreSQL connections of a production-configured daphne stay bounded.

Daphne runs each request's sync code on a thread of its own; with persistent
connections (``CONN_MAX_AGE`` > 0) every request left one connection behind
until the server's limit was reached and every request answered 503
(docs/adr/0007-db-connections.md). The server here runs with the production
settings and counts its own backends in ``pg_stat_activity``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
import websockets
from django.db import connection
from websockets.typing import Origin

from apps.accounts.services import token_issue
from tests.conftest import make_patient
from tests.support.server import DaphneServer, production_env

pytestmark = pytest.mark.django_db(transaction=True)

DB_THREADS = 8  # HUB_DB_THREADS, the production default
# Idle, the server may keep one connection per thread of the socket pool plus
# one for asgiref's single sync thread; nothing per request.
BOUND = DB_THREADS + 1
CONCURRENCY = 8


def _backends(app_name: str) -> tuple[int, int]:
    """(this server's backends, all backends on the test database but ours)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE application_name = %s), count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()",
            [app_name],
        )
        ours, total = cursor.fetchone()
    return int(ours), int(total)


def _settled(app_name: str, timeout: float = 5.0, window: float = 1.0) -> int:
    """The server's backend count once it is at most the bound: the lowest seen
    over ``window`` seconds, as a request's connection closes just after its
    response is sent. A leaked connection never closes: past ``timeout`` the
    last count is returned."""
    deadline = time.monotonic() + timeout
    while True:
        ours, _ = _backends(app_name)
        if ours <= BOUND or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if ours > BOUND:
        return ours
    lowest, until = ours, time.monotonic() + window
    while time.monotonic() < until:
        time.sleep(0.1)
        lowest = min(lowest, _backends(app_name)[0])
    return lowest


def test_production_server_keeps_a_bounded_number_of_connections() -> None:
    patient = make_patient("13900000701", "连接测试患者")
    token = token_issue(user=patient.user).raw
    app_name = "hub-conn-test"
    server = DaphneServer(
        **production_env(
            HUB_DB_THREADS=str(DB_THREADS),
            PGAPPNAME=app_name,  # libpq: tells this server's backends apart
        )
    )
    server.env.pop("DB_CONN_MAX_AGE", None)  # the production default, whatever this shell has

    def get(n: int) -> int:
        if n % 2:
            req = urllib.request.Request(f"{server.url}/api/v1/accounts/me")
            req.add_header("Authorization", f"Bearer {token}")
        else:
            req = urllib.request.Request(f"{server.url}/readyz")
        req.add_header("X-Forwarded-Proto", "https")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return int(r.status)
        except urllib.error.HTTPError as e:
            return int(e.code)

    async def socket_auth() -> str:
        async with websockets.connect(server.ws_url, origin=Origin(server.url), open_timeout=5) as ws:
            await ws.send(json.dumps({"type": "auth", "token": token, "id": "1"}))
            reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
            return str(reply["type"])

    async def sockets(n: int) -> list[str]:
        return list(await asyncio.gather(*(socket_auth() for _ in range(n))))

    peak = 0
    stop_sampling = threading.Event()

    def sample() -> None:
        nonlocal peak
        try:
            while not stop_sampling.wait(0.02):
                peak = max(peak, _backends(app_name)[0])
        finally:
            connection.close()

    counts: dict[int, int] = {}
    statuses: list[int] = []
    server.start()
    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            # Checkpoints grow slowly so that a leak fails before it can exhaust
            # the (shared) server's max_connections.
            sent = 0
            for checkpoint, concurrent in ((20, False), (50, True), (100, True), (300, True), (500, True)):
                batch = range(sent, checkpoint)
                statuses += pool.map(get, batch) if concurrent else [get(n) for n in batch]
                sent = checkpoint
                counts[sent] = _settled(app_name)
                assert counts[sent] <= BOUND, f"{counts[sent]} connections open after {sent} requests: {counts}"
        # The socket path (its own sized pool) adds at most its threads.
        assert asyncio.run(sockets(3 * DB_THREADS)) == ["auth.ok"] * (3 * DB_THREADS)
        after_sockets = _settled(app_name)
        total = _backends(app_name)[1]
    finally:
        stop_sampling.set()
        sampler.join()
        server.stop()
    print(f"connections after requests {counts}, after sockets {after_sockets}, peak {peak}, on the test db {total}")
    assert statuses.count(200) == 500, {s: statuses.count(s) for s in set(statuses)}
    assert counts[500] <= counts[100] + 1  # does not grow with the request count
    assert after_sockets <= BOUND
    assert peak <= BOUND + CONCURRENCY  # under load: the pool plus one per request in flight

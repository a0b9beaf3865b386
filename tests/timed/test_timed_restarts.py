"""The hard stop survives restarts: a real daphne killed and another started enforces the
deadline (and a socket on the new one hears ``timed.ended``); a real ``run_huey`` worker
killed and restarted before its task's eta still ends the session with no web process."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from huey import RedisHuey
from huey.contrib.djhuey import HUEY
from huey.utils import normalize_time

from apps.accounts.roles import Role
from apps.accounts.services import token_issue
from apps.im.services import conversation_for_pair
from apps.timed import services
from apps.timed.models import TimedSession
from apps.timed.tasks import session_deadline_task
from tests.conftest import make_patient, make_staff
from tests.support.server import ROOT, DaphneServer
from tests.support.socket_client import SocketClient

from .conftest import KIND, Calls

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


async def wait_ended(session_id: int, timeout: float) -> TimedSession:
    limit = time.monotonic() + timeout
    while True:
        row = await TimedSession.objects.aget(pk=session_id)
        if row.status == TimedSession.Status.ENDED or time.monotonic() > limit:
            return row
        await asyncio.sleep(0.1)


@sync_to_async
def pair() -> tuple[Any, Any, int, str]:
    doctor = make_staff(Role.DOCTOR, "restartdoc")
    patient = make_patient("13900000777", "重启患者")
    conv = conversation_for_pair(staff=doctor.user, patient=patient.user)
    return doctor, patient, conv.pk, token_issue(user=patient.user).raw


async def test_a_killed_web_process_is_replaced_and_the_new_one_stops_the_session(owner: Calls) -> None:
    _doctor, _patient, conv_id, token = await pair()
    first = DaphneServer(TIMED_LEADER_TTL_MS="1500").start()
    second: DaphneServer | None = None
    try:
        session = await sync_to_async(services.session_start)(
            KIND, "restart-web", 7, conversation_id=conv_id, topics=[f"conv:{conv_id}"]
        )
        await asyncio.sleep(1.0)
        first.kill(signal.SIGKILL)
        second = DaphneServer(TIMED_LEADER_TTL_MS="1500").start()
        socket = await SocketClient.connect(second.ws_url, token, origin=second.url)
        try:
            assert (await socket.subscribe(f"conv:{conv_id}"))["ok"]
            tick = await socket.wait_for(event="timed.tick", timeout=5)
            assert tick["data"]["session_id"] == session.pk
            ended = await socket.wait_for(event="timed.ended", timeout=15)
            assert ended["data"] == {"session_id": session.pk, "reason": "deadline"}
        finally:
            await socket.close()
        # The event and the row agree once this process sees the commit (Redis is shared: an
        # event of another run's session with the same id must not pass for ours).
        row = await wait_ended(session.pk, 10)
        assert row.status == TimedSession.Status.ENDED and row.end_reason == "deadline"
        assert row.ended_at is not None and dt.timedelta(0) <= row.ended_at - row.deadline < dt.timedelta(seconds=2)
    finally:
        first.stop()
        if second is not None:
            second.stop()


def start_worker(log: Path) -> subprocess.Popen[bytes]:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "hub.settings",
        "HUB_ENV": "test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "HUB_VAR_DIR": str(settings.VAR_DIR),
        "HUEY_IMMEDIATE": "0",
        "HUEY_WORKERS": "1",
    }
    handle = open(log, "ab")
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "run_huey"], cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT
    )
    handle.close()
    limit = time.monotonic() + 30
    while b"consumer started" not in log.read_bytes().lower() and b"huey consumer" not in log.read_bytes().lower():
        assert proc.poll() is None and time.monotonic() < limit, log.read_text()
        time.sleep(0.1)
    return proc


async def test_a_killed_worker_restarted_before_the_eta_still_ends_the_session(owner: Calls, tmp_path: Path) -> None:
    queue = RedisHuey("hub", url=settings.REDIS_URL)  # the worker's queue (the test process runs huey immediate)
    queue.flush()
    log = tmp_path / "huey.log"
    worker = await asyncio.to_thread(start_worker, log)
    replacement: subprocess.Popen[bytes] | None = None
    try:
        session = await sync_to_async(services.session_start)(KIND, "restart-worker", 6)
        eta = normalize_time(session.deadline, None, True)
        task = session_deadline_task.task_class((session.pk,), {}, eta=eta)
        queue.storage.enqueue(HUEY.serialize_task(task), task.priority)
        await asyncio.sleep(1.5)  # the worker took it into its schedule
        assert queue.scheduled_count() == 1, log.read_text()
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        replacement = await asyncio.to_thread(start_worker, log)
        row = await wait_ended(session.pk, 20)
        assert row.status == TimedSession.Status.ENDED and row.end_reason == "deadline", (
            queue.scheduled_count(),
            queue.pending_count(),
            log.read_text()[-1500:],
        )
        # The task at the eta ended it (the per-minute sweep could be up to a minute late).
        assert row.ended_at is not None and dt.timedelta(0) <= row.ended_at - row.deadline < dt.timedelta(seconds=3)
        assert owner.ended == []  # the worker process has no test owner: the stop did not wait for one
    finally:
        for proc in (worker, replacement):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(10)
        queue.flush()

"""Fault tests against real daphne processes: kill -9 mid-conversation,
restart Redis. Each is bounded in time and cleans up after itself."""

from __future__ import annotations

import asyncio
import subprocess
import time
import urllib.request

import pytest
from django.conf import settings

from apps.accounts.roles import Role
from apps.accounts.services import token_issue
from apps.im import services
from apps.im.models import Message
from tests.conftest import make_patient, make_staff
from tests.support.hub_client import HubClient
from tests.support.server import DaphneServer

pytestmark = pytest.mark.django_db(transaction=True)


def _pair(tag: str):
    doctor = make_staff(Role.DOCTOR, f"fault{tag}")
    patient = make_patient(f"1390000{tag:0>4}", "故障测试患者")
    conv = services.conversation_for_pair(staff=doctor.user, patient=patient.user)
    return token_issue(user=doctor.user).raw, token_issue(user=patient.user).raw, conv.pk


def test_killing_the_server_mid_conversation_loses_and_duplicates_nothing() -> None:
    d_token, p_token, conv_id = _pair("0031")
    server = DaphneServer().start()
    total, kill_at = 60, 20

    async def scenario() -> tuple[HubClient, list[int]]:
        sender = HubClient(server.ws_url, server.url, d_token, conv_id)
        receiver = HubClient(server.ws_url, server.url, p_token, conv_id)
        await sender.connect()
        await receiver.connect()
        acked: list[int] = []

        async def keep_receiver_alive() -> None:
            while True:
                if receiver.reader is None or receiver.reader.done():
                    await receiver.close()
                    await receiver.connect()
                await asyncio.sleep(0.05)

        watcher = asyncio.create_task(keep_receiver_alive())
        for n in range(1, total + 1):
            if n == kill_at:
                server.kill()  # SIGKILL: no graceful shutdown
                await asyncio.to_thread(server.start)
            ack = await sender.send_reliably(f"消息{n}", f"kill-{n}")
            acked.append(ack["seq"])
        # Let the receiver catch up through live events and resync.
        for _ in range(100):
            if receiver.contiguous() == total:
                break
            await asyncio.sleep(0.05)
        await receiver.sync()
        watcher.cancel()
        await sender.close()
        await receiver.close()
        return receiver, acked

    try:
        receiver, acked = asyncio.run(asyncio.wait_for(scenario(), 90))
    finally:
        server.stop()
    assert acked == list(range(1, total + 1))  # every send acked once, in order
    rows = list(Message.objects.filter(conversation_id=conv_id).order_by("seq").values_list("seq", "client_msg_id"))
    assert [seq for seq, _ in rows] == list(range(1, total + 1))  # nothing lost, no gap
    assert [cmid for _, cmid in rows] == [f"kill-{n}" for n in range(1, total + 1)]  # nothing stored twice
    assert sorted(receiver.received) == list(range(1, total + 1))
    assert [receiver.received[s]["body"]["text"] for s in range(1, total + 1)] == [
        f"消息{n}" for n in range(1, total + 1)
    ]


def _redis(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", "6379", *args], capture_output=True, text=True, timeout=10
    )


def _start_redis() -> None:
    subprocess.run(
        [
            "redis-server",
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        check=True,
        timeout=10,
    )
    for _ in range(100):
        if _redis("ping").stdout.strip() == "PONG":
            return
        time.sleep(0.05)
    raise RuntimeError("redis did not come back")


def test_restarting_redis_leaves_clients_able_to_resync() -> None:
    assert settings.REDIS_URL.startswith("redis://127.0.0.1:6379")
    d_token, p_token, conv_id = _pair("0032")
    server = DaphneServer().start()

    async def scenario() -> tuple[HubClient, list[int]]:
        sender = HubClient(server.ws_url, server.url, d_token, conv_id)
        receiver = HubClient(server.ws_url, server.url, p_token, conv_id)
        await sender.connect()
        await receiver.connect()
        acked = [(await sender.send_reliably("重启前", "r-1"))["seq"]]
        _redis("shutdown", "nosave")
        # Redis is down: messages are still stored and acked (the log is the store).
        for n in range(2, 5):
            acked.append((await sender.send_reliably(f"中断中{n}", f"r-{n}"))["seq"])
        await asyncio.to_thread(_start_redis)
        # The node re-subscribes and tells sockets to resync.
        for _ in range(200):
            if receiver.resyncs and receiver.contiguous() == 4:
                break
            await asyncio.sleep(0.05)
        # And live fan-out works again.
        acked.append((await sender.send_reliably("恢复后", "r-5"))["seq"])
        for _ in range(100):
            if 5 in receiver.received:
                break
            await asyncio.sleep(0.05)
        await sender.close()
        await receiver.close()
        return receiver, acked

    try:
        receiver, acked = asyncio.run(asyncio.wait_for(scenario(), 60))
        with urllib.request.urlopen(f"{server.url}/readyz", timeout=5) as r:
            assert r.status == 200
        assert server.alive  # no crash loop
    finally:
        if _redis("ping").stdout.strip() != "PONG":
            _start_redis()
        server.stop()
    assert acked == [1, 2, 3, 4, 5]
    assert receiver.resyncs >= 1
    assert sorted(receiver.received) == [1, 2, 3, 4, 5]

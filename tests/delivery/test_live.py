"""The patient hears each status change live: ``shipment.updated`` on their
``user:<id>`` topic after commit, with the courier's latest event, and nothing
of the recipient."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from apps.accounts.services import token_issue
from hub.asgi import application

from .conftest import KIND, PHONE, RECIPIENT, World

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def _socket(user: Any) -> WebsocketCommunicator:
    token = await sync_to_async(lambda: token_issue(user=user).raw)()
    comm = WebsocketCommunicator(application, "/ws/", headers=[(b"origin", b"http://127.0.0.1:8000")])
    assert (await comm.connect())[0]
    await comm.send_to(text_data=json.dumps({"type": "auth", "id": "a", "token": token}))
    assert (await comm.receive_json_from(timeout=3))["type"] == "auth.ok"
    await comm.send_to(text_data=json.dumps({"type": "subscribe", "id": "s", "topic": f"user:{user.pk}"}))
    assert (await comm.receive_json_from(timeout=3))["ok"]
    return comm


async def _next_update(comm: WebsocketCommunicator) -> dict[str, Any]:
    for _ in range(5):
        frame = await comm.receive_json_from(timeout=5)
        if frame.get("event") == "shipment.updated":
            return frame
    raise AssertionError("no shipment.updated frame")


async def test_the_patient_sees_each_courier_step_live(world: World, test_sources: Any, sandbox: Any) -> None:
    def create() -> int:
        test_sources.add("rx-live", world.me)
        api = world.pharmacist.api()
        sid = api.post("/delivery/shipments", {"source_kind": KIND, "source_id": "rx-live", "method": "courier"})
        return int(sid.json()["id"])

    sid = await sync_to_async(create)()
    comm = await _socket(world.account.user)
    other = await _socket(world.other.user)

    def step(path: str, body: dict[str, Any]) -> None:
        assert world.pharmacist.api().post(path, body).status_code == 200

    await sync_to_async(step)(f"/delivery/shipments/{sid}/book", {"courier": "sandbox"})
    frame = await _next_update(comm)
    assert frame["topic"] == f"user:{world.account.user.pk}"
    assert frame["data"]["shipment_id"] == sid and frame["data"]["status"] == "booked"
    assert frame["data"]["status_label"] == "已下单" and frame["data"]["event"] is None
    await sync_to_async(step)(f"/delivery/sandbox/shipments/{sid}/step", {"action": "next"})
    frame = await _next_update(comm)
    assert frame["data"]["status"] == "accepted"
    assert frame["data"]["event"]["description"] == "快递员已接单，即将上门取件"
    assert frame["data"]["event"]["occurred_at"].endswith("+00:00")  # UTC; Beijing time is the client's
    text = json.dumps(frame, ensure_ascii=False)
    assert RECIPIENT not in text and PHONE not in text and "天河路" not in text
    # Another patient's socket hears nothing.
    assert await other.receive_nothing(timeout=0.5)
    await comm.disconnect()
    await other.disconnect()

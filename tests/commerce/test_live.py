"""The payer sees their order change live: ``order.updated`` on ``user:<id>`` after commit."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from apps.accounts.services import token_issue
from apps.commerce import services
from hub.asgi import application
from tests.commerce.conftest import add_patient
from tests.conftest import make_patient


async def _client(user: Any) -> WebsocketCommunicator:
    token = await sync_to_async(lambda: token_issue(user=user).raw)()
    comm = WebsocketCommunicator(application, "/ws/", headers=[(b"origin", b"http://127.0.0.1:8000")])
    assert (await comm.connect())[0]
    await comm.send_to(text_data=json.dumps({"type": "auth", "id": "a", "token": token}))
    assert (await comm.receive_json_from(timeout=3))["type"] == "auth.ok"
    await comm.send_to(text_data=json.dumps({"type": "subscribe", "id": "s", "topic": f"user:{user.pk}"}))
    assert (await comm.receive_json_from(timeout=3))["ok"]
    return comm


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_the_payer_gets_order_updated_when_paid(gateway: Any, shop: Any) -> None:
    def setup() -> Any:
        account = make_patient("13900000037", "周九")
        patient = add_patient(account, "周九")
        order = services.order_checkout(
            payer=account.user,
            patient_id=patient.pk,
            lines=[services.CheckoutLine("test_tea", "t1", 1)],
            client_key=secrets.token_hex(8),
        )
        return account, order

    account, order = await sync_to_async(setup)()
    comm = await _client(account.user)
    await sync_to_async(lambda: services.payment_notice_apply(gateway.pay(order.order_no)))()
    statuses = []
    for _ in range(2):
        frame = await comm.receive_json_from(timeout=5)
        assert frame["event"] == "order.updated" and frame["topic"] == f"user:{account.user.pk}"
        assert frame["data"]["order_no"] == order.order_no
        statuses.append(frame["data"]["status"])
    assert statuses == ["paid", "completed"]
    assert set(frame["data"]) == {"order_no", "status", "status_label", "paid_fen", "refunded_fen", "payable_yuan"}
    await comm.disconnect()

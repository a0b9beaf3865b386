"""Two daphne processes behind one Redis: events cross processes live."""

from __future__ import annotations

import asyncio

import pytest

from apps.accounts.roles import Role
from apps.accounts.services import token_issue
from apps.im import services
from tests.conftest import make_patient, make_staff
from tests.support.hub_client import HubClient
from tests.support.server import DaphneServer

pytestmark = pytest.mark.django_db(transaction=True)


def test_events_cross_daphne_processes_live() -> None:
    doctor = make_staff(Role.DOCTOR, "multinode")
    patient = make_patient("13900000041", "多进程患者")
    conv = services.conversation_for_pair(staff=doctor.user, patient=patient.user)
    d_token, p_token = token_issue(user=doctor.user).raw, token_issue(user=patient.user).raw
    a = DaphneServer().start()
    b = DaphneServer().start()

    async def scenario() -> HubClient:
        sender = HubClient(a.ws_url, a.url, d_token, conv.pk)
        receiver = HubClient(b.ws_url, b.url, p_token, conv.pk)
        await sender.connect()
        await receiver.connect()
        for n in range(1, 21):
            await sender.send_reliably(f"跨进程{n}", f"mn-{n}")
        for _ in range(100):
            if receiver.deliveries >= 20:
                break
            await asyncio.sleep(0.05)
        await sender.close()
        await receiver.close()
        return receiver

    try:
        receiver = asyncio.run(asyncio.wait_for(scenario(), 60))
    finally:
        a.stop()
        b.stop()
    # Every message arrived as a live event on the other process (no resync needed).
    assert receiver.deliveries == 20
    assert sorted(receiver.received) == list(range(1, 21))

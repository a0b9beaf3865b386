"""Live waiting room over the hub: the visit ahead is cancelled and the one behind
is told its new position on ``visit:<id>`` after commit; the doctor's
``consult_queue:<id>`` gets the counts; nobody else may subscribe."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from apps.accounts.services import token_issue
from hub.asgi import application
from tests.commerce.conftest import gateway  # noqa: F401  (fixture)

from .test_booking_support import book, booker, doctor, pay, slot


async def _client(user: Any) -> WebsocketCommunicator:
    token = await sync_to_async(lambda: token_issue(user=user).raw)()
    comm = WebsocketCommunicator(application, "/ws/", headers=[(b"origin", b"http://127.0.0.1:8000")])
    assert (await comm.connect())[0]
    await comm.send_to(text_data=json.dumps({"type": "auth", "id": "a", "token": token}))
    assert (await comm.receive_json_from(timeout=3))["type"] == "auth.ok"
    return comm


async def _subscribe(comm: WebsocketCommunicator, topic: str) -> dict[str, Any]:
    await comm.send_to(text_data=json.dumps({"type": "subscribe", "id": "s", "topic": topic}))
    return dict(await comm.receive_json_from(timeout=3))


async def _until(comm: WebsocketCommunicator, event: str) -> dict[str, Any]:
    for _ in range(10):
        frame = dict(await comm.receive_json_from(timeout=5))
        if frame.get("event") == event:
            return frame
    raise AssertionError(f"no {event}")


class _NoCapture:
    """pay() without the on-commit capture: transaction=True commits for real."""

    def __call__(self, execute: bool = True) -> Any:
        import contextlib

        return contextlib.nullcontext()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_the_visit_behind_is_told_its_new_position_when_the_one_ahead_cancels(gateway: Any) -> None:  # noqa: F811
    gateway.refund_answer = "success"

    def setup() -> Any:
        doc = doctor()
        s = slot(doc)
        ahead, behind, stranger = booker(), booker(), booker()
        v1 = pay(gateway, book(ahead, doc, s), _NoCapture())
        v2 = pay(gateway, book(behind, doc, s), _NoCapture())
        return doc, ahead, behind, stranger, v1, v2

    doc, ahead, behind, stranger, v1, v2 = await sync_to_async(setup)()
    ws = await _client(behind.account.user)
    assert (await _subscribe(ws, f"visit:{v2.public_id}"))["ok"]
    doc_ws = await _client(doc.user)
    assert (await _subscribe(doc_ws, f"consult_queue:{doc.profile.pk}"))["ok"]
    other = await _client(stranger.account.user)
    assert (await _subscribe(other, f"visit:{v2.public_id}"))["code"] == "topic.forbidden"
    assert (await _subscribe(other, f"consult_queue:{doc.profile.pk}"))["code"] == "topic.forbidden"
    assert (await _subscribe(other, "visit:not-a-visit"))["code"] == "topic.invalid"

    def cancel() -> int:
        return int(ahead.account.api().post(f"/consultations/visits/{v1.public_id}/cancel").status_code)

    assert await sync_to_async(cancel)() == 200
    frame = await _until(ws, "visit.queue")
    assert frame["topic"] == f"visit:{v2.public_id}"
    assert frame["data"] == {"visit_id": v2.public_id, "position": 1, "ahead": 0, "estimated_wait_minutes": 0}
    counts = await _until(doc_ws, "consult.queue_changed")
    assert counts["data"] == {"waiting": 1, "accepted": 0, "in_progress": 0}
    for c in (ws, doc_ws, other):
        await c.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_the_patient_is_called_in_with_the_room(gateway: Any) -> None:  # noqa: F811
    from .test_booking_support import accept

    def setup() -> Any:
        doc = doctor()
        b = booker()
        v = pay(gateway, book(b, doc, slot(doc)), _NoCapture())
        return doc, b, accept(doc, v)

    doc, b, v = await sync_to_async(setup)()
    ws = await _client(b.account.user)
    assert (await _subscribe(ws, f"visit:{v.public_id}"))["ok"]

    def call() -> dict[str, Any]:
        return dict(doc.persona.api().post(f"/consultations/visits/{v.public_id}/call").json())

    out = await sync_to_async(call)()
    assert out["status"] == "in_progress"
    updated = await _until(ws, "visit.updated")
    assert updated["data"]["visit"]["status"] == "in_progress"
    called = await _until(ws, "visit.called")
    assert called["data"] == {
        "visit_id": v.public_id,
        "room_id": f"conv-{out['conversation_id']}",
        "conversation_id": out["conversation_id"],
    }
    await ws.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_the_department_doctors_see_the_queue_counts(gateway: Any) -> None:  # noqa: F811
    from .test_booking_support import department

    def setup() -> Any:
        dept = department()
        return doctor(dept), doctor(department("respiratory", "呼吸内科")), booker()

    doc, elsewhere, b = await sync_to_async(setup)()
    ws = await _client(doc.user)
    assert (await _subscribe(ws, "consult_dept:cardiology"))["ok"]
    other = await _client(elsewhere.user)
    assert (await _subscribe(other, "consult_dept:cardiology"))["code"] == "topic.forbidden"

    def book_and_pay() -> str:
        return pay(gateway, book(b, None, None, dept="cardiology"), _NoCapture()).public_id

    visit_id = await sync_to_async(book_and_pay)()
    frame = await _until(ws, "consult.queue_changed")
    assert frame["topic"] == "consult_dept:cardiology" and frame["data"]["waiting"] == 1

    def take() -> int:
        return int(doc.persona.api().post(f"/consultations/visits/{visit_id}/take").status_code)

    assert await sync_to_async(take)() == 200
    frame = await _until(ws, "consult.queue_changed")
    assert frame["data"]["waiting"] == 0
    for c in (ws, other):
        await c.disconnect()

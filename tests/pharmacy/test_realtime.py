"""prescription.updated reaches the doctor and the patient after commit, with ids only."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from apps.accounts.services import token_issue
from hub.asgi import application

from .conftest import PIN


async def _client(user: Any) -> WebsocketCommunicator:
    token = await sync_to_async(lambda: token_issue(user=user).raw)()
    comm = WebsocketCommunicator(application, "/ws/", headers=[(b"origin", b"http://127.0.0.1:8000")])
    assert (await comm.connect())[0]
    await comm.send_to(text_data=json.dumps({"type": "auth", "id": "a", "token": token}))
    assert (await comm.receive_json_from(timeout=3))["type"] == "auth.ok"
    await comm.send_to(text_data=json.dumps({"type": "subscribe", "id": "s", "topic": f"user:{user.pk}"}))
    assert (await comm.receive_json_from(timeout=3))["ok"]
    return comm


async def _events(comm: WebsocketCommunicator, n: int) -> list[dict[str, Any]]:
    return [await comm.receive_json_from(timeout=5) for _ in range(n)]


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_doctor_and_patient_get_prescription_updated() -> None:
    from apps.care_team.models import CareRelationship
    from apps.care_team.services import relationship_open
    from tests.conftest import make_patient

    from .conftest import add_patient, enrol, make_doctor

    def setup() -> Any:
        doctor = make_doctor("rtdoc")
        account = make_patient("13900000071", "钱七")
        me = add_patient(account, "钱七")
        relationship_open(staff=doctor.user, patient=me, reason=CareRelationship.Reason.CARE_PLAN)
        enrol(doctor)
        return doctor, account, me

    doctor, account, me = await sync_to_async(setup)()
    doc_ws, pat_ws = await _client(doctor.user), await _client(account.user)

    def prescribe() -> int:
        api = doctor.api()
        body = {
            "patient_id": me.pk,
            "diagnosis": "原发性高血压",
            "lines": [
                {"drug_code": "AMLO-5", "dose": "5", "frequency": "qd", "route": "po", "days": 7, "quantity": "1"}
            ],
        }
        pid = int(api.post("/pharmacy/prescriptions", body).json()["id"])
        assert api.post(f"/pharmacy/prescriptions/{pid}/sign", {"pin": PIN}).status_code == 200
        return pid

    pid = await sync_to_async(prescribe)()
    create, sign = await _events(doc_ws, 2)
    assert (create["event"], create["data"]["action"], create["data"]["status"]) == (
        "prescription.updated",
        "create",
        "draft",
    )
    assert sign["data"] == {
        "prescription_id": pid,
        "patient_id": me.pk,
        "status": "signed",
        "status_label": "已签名",
        "version": 1,
        "action": "sign",
    }
    # the patient hears of it from signing on (never of the draft), with no drug or diagnosis
    (patient_event,) = await _events(pat_ws, 1)
    assert patient_event["topic"] == f"user:{account.user.pk}" and patient_event["data"]["status"] == "signed"
    assert "氨氯地平" not in json.dumps(patient_event, ensure_ascii=False)
    assert await pat_ws.receive_nothing(timeout=0.3)
    await doc_ws.disconnect()
    await pat_ws.disconnect()


async def _subscribe(user: Any, topic: str) -> tuple[WebsocketCommunicator, dict[str, Any]]:
    token = await sync_to_async(lambda: token_issue(user=user).raw)()
    comm = WebsocketCommunicator(application, "/ws/", headers=[(b"origin", b"http://127.0.0.1:8000")])
    assert (await comm.connect())[0]
    await comm.send_to(text_data=json.dumps({"type": "auth", "id": "a", "token": token}))
    assert (await comm.receive_json_from(timeout=3))["type"] == "auth.ok"
    await comm.send_to(text_data=json.dumps({"type": "subscribe", "id": "s", "topic": topic}))
    return comm, await comm.receive_json_from(timeout=3)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_review_queue_topic_for_pharmacists_only() -> None:
    """pharmacy_review:queue: every pharmacist hears of a submission and of the
    decision (ids and status only); a doctor or a patient may not subscribe, and
    nothing is sent to the queue for a draft or a signature."""
    from apps.accounts.roles import Role
    from apps.care_team.models import CareRelationship
    from apps.care_team.services import relationship_open
    from tests.conftest import make_patient, make_staff

    from .conftest import add_patient, enrol, make_doctor

    def setup() -> Any:
        doctor = make_doctor("rqdoc")
        pharmacist = make_staff(Role.PHARMACIST, "rqpharm")
        account = make_patient("13900000072", "孙八")
        me = add_patient(account, "孙八")
        relationship_open(staff=doctor.user, patient=me, reason=CareRelationship.Reason.CARE_PLAN)
        enrol(doctor)
        return doctor, pharmacist, account, me

    doctor, pharmacist, account, me = await sync_to_async(setup)()
    for outsider in (doctor.user, account.user):
        ws, reply = await _subscribe(outsider, "pharmacy_review:queue")
        assert (reply["type"], reply["code"]) == ("error", "topic.forbidden")
        await ws.disconnect()
    ws, reply = await _subscribe(pharmacist.user, "pharmacy_review:other")
    assert (reply["type"], reply["code"]) == ("error", "topic.invalid")
    await ws.disconnect()
    queue, reply = await _subscribe(pharmacist.user, "pharmacy_review:queue")
    assert reply["ok"]

    def prescribe() -> int:
        api = doctor.api()
        body = {
            "patient_id": me.pk,
            "diagnosis": "原发性高血压",
            "lines": [
                {"drug_code": "AMLO-5", "dose": "5", "frequency": "qd", "route": "po", "days": 7, "quantity": "1"}
            ],
        }
        pid = int(api.post("/pharmacy/prescriptions", body).json()["id"])
        assert api.post(f"/pharmacy/prescriptions/{pid}/sign", {"pin": PIN}).status_code == 200
        return pid

    pid = await sync_to_async(prescribe)()
    assert await queue.receive_nothing(timeout=0.3)  # a draft and a signature are not the queue's
    await sync_to_async(lambda: doctor.api().post(f"/pharmacy/prescriptions/{pid}/submit", {}))()
    (submitted,) = await _events(queue, 1)
    assert submitted["topic"] == "pharmacy_review:queue"
    assert (submitted["data"]["prescription_id"], submitted["data"]["action"]) == (pid, "submit")
    assert "氨氯地平" not in json.dumps(submitted, ensure_ascii=False)
    assert "高血压" not in json.dumps(submitted, ensure_ascii=False)
    await sync_to_async(lambda: pharmacist.api().post(f"/pharmacy/prescriptions/{pid}/approve", {}))()
    (approved,) = await _events(queue, 1)
    assert (approved["data"]["action"], approved["data"]["status"]) == ("approve", "approved")
    await queue.disconnect()

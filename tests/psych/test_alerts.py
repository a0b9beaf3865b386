"""Critical answers raise alerts to the assigning doctor (live, on the socket);
unacknowledged past the deadline they escalate to the department's on-duty
doctor; every step is in the alert's log and the audit chain."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from apps.accounts.models import SandboxOutbox
from apps.accounts.services import token_issue
from apps.audit.models import AuditEvent
from apps.psych.models import Alert, AlertEvent, DutyShift
from apps.psych.services import alerts_escalate_due
from apps.psych.tasks import escalate_overdue_alerts
from hub import crypto
from hub.asgi import application

from .conftest import due, make_doctor

PHQ9_ITEM9 = {str(n): 0 for n in range(1, 9)} | {"9": 1}  # total 1: band "none", item 9 positive


def assign_and_submit(care, code: str, answers: dict[str, int]) -> dict[str, Any]:
    r = care.doctor.api().post(
        "/psych/assignments", {"patient_id": care.me.pk, "scale_codes": [code], "due_date": due()}
    )
    aid = r.json()["items"][0]["id"]
    report = care.account.api().post(f"/psych/assignments/{aid}/submit", {"answers": answers})
    assert report.status_code == 200, report.json()
    return report.json()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("code", "answers", "item"),
    [
        ("PHQ-9", PHQ9_ITEM9, 9),
        # SDS: lowest values everywhere except item 19 = 2 ("小部分时间").
        ("SDS", {str(n): 1 for n in range(1, 21)} | {"19": 2}, 19),
        ("EPDS", {str(n): 0 for n in range(1, 10)} | {"10": 1}, 10),
    ],
)
def test_critical_item_alerts_whatever_the_total(care, code, answers, item, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        report = assign_and_submit(care, code, answers)
    assert report["band_severity"] == 0  # the lowest band, yet:
    assert report["needs_help"] is True and "12356" in report["help_text"]
    alert = Alert.objects.get()
    assert (alert.item, alert.status, alert.doctor_id) == (item, "open", care.doctor.user.pk)
    assert alert.department == "精神心理科"
    assert alert.ack_deadline - alert.created_at == dt.timedelta(minutes=30)
    assert list(alert.events.values_list("action", flat=True)) == ["raised", "notified"]
    assert AuditEvent.objects.filter(action="psych.alert.raised", object_id=str(alert.pk)).exists()
    # The doctor is told off-line too (SMS sandbox when no mini-program identity).
    doctor_sms = SandboxOutbox.objects.filter(
        recipient_hash=crypto.lookup_hash(care.doctor.user.phone, context="phone")
    )
    assert doctor_sms.filter(body__contains="心理测评危急预警").count() == 1


@pytest.mark.django_db
def test_no_alert_below_the_rule(care) -> None:
    assign_and_submit(care, "PHQ-9", {str(n): 3 for n in range(1, 9)} | {"9": 0})  # total 24, severe
    assign_and_submit(care, "EPDS", {str(n): 3 for n in range(1, 10)} | {"10": 0})
    assert not Alert.objects.exists()


@pytest.mark.django_db
def test_acknowledge_then_close_with_log(care) -> None:
    assign_and_submit(care, "PHQ-9", PHQ9_ITEM9)
    alert = Alert.objects.get()
    d = care.doctor.api()
    assert [a["id"] for a in d.get("/psych/alerts", status="active").json()["items"]] == [alert.pk]
    closing_early = d.post(f"/psych/alerts/{alert.pk}/close", {"note": "已电话随访"})
    assert closing_early.status_code == 409 and closing_early.json()["code"] == "psych.transition_refused"
    acked = d.post(f"/psych/alerts/{alert.pk}/acknowledge", {"note": "已电话联系患者"}).json()
    assert acked["status"] == "acknowledged" and acked["acknowledged_by_id"] == care.doctor.user.pk
    twice = d.post(f"/psych/alerts/{alert.pk}/acknowledge", {})
    assert twice.status_code == 409
    closed = d.post(f"/psych/alerts/{alert.pk}/close", {"note": "已安排门诊复诊"}).json()
    assert closed["status"] == "closed"
    assert [e["action"] for e in closed["events"]] == ["raised", "notified", "acknowledged", "closed"]
    assert closed["events"][2]["note"] == "已电话联系患者"
    assert d.get("/psych/alerts", status="active").json()["items"] == []
    # Acknowledged before the deadline: the sweep leaves it alone.
    assert alerts_escalate_due(now=timezone.now() + dt.timedelta(hours=2)) == {"escalated": 0, "waiting": 0}
    # Another doctor cannot touch it.
    other = make_doctor("bystander")
    assert other.api().post(f"/psych/alerts/{alert.pk}/acknowledge", {}).status_code == 404
    assert other.api().get(f"/psych/alerts/{alert.pk}").status_code == 404


@pytest.mark.django_db
def test_escalation_to_the_on_duty_doctor_after_the_deadline(care, django_capture_on_commit_callbacks) -> None:
    on_duty = make_doctor("dutydoc")
    elsewhere = make_doctor("cardio", department="心内科")
    now = timezone.now()
    DutyShift.objects.create(
        department="心内科",
        doctor=elsewhere.user,
        starts_at=now - dt.timedelta(hours=1),
        ends_at=now + dt.timedelta(hours=12),
    )
    assign_and_submit(care, "PHQ-9", PHQ9_ITEM9)
    alert = Alert.objects.get()
    # Before the deadline nothing happens.
    assert alerts_escalate_due(now=alert.ack_deadline - dt.timedelta(seconds=1)) == {"escalated": 0, "waiting": 0}
    # Past the deadline with nobody on duty in the department: waits, logged once.
    late = alert.ack_deadline + dt.timedelta(minutes=1)
    assert alerts_escalate_due(now=late) == {"escalated": 0, "waiting": 1}
    assert alerts_escalate_due(now=late) == {"escalated": 0, "waiting": 1}
    assert alert.events.filter(action="no_on_duty").count() == 1
    assert Alert.objects.get().status == "open"
    # The roster gets an on-duty doctor: the next sweep escalates to them (not to 心内科).
    DutyShift.objects.create(
        department="精神心理科",
        doctor=on_duty.user,
        starts_at=now - dt.timedelta(hours=1),
        ends_at=now + dt.timedelta(hours=12),
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert alerts_escalate_due(now=late) == {"escalated": 1, "waiting": 0}
    alert.refresh_from_db()
    assert (alert.status, alert.escalated_to_id) == ("escalated", on_duty.user.pk)
    assert AuditEvent.objects.filter(action="psych.alert.escalated", object_id=str(alert.pk)).exists()
    # Re-running the sweep changes nothing.
    assert alerts_escalate_due(now=late + dt.timedelta(minutes=5)) == {"escalated": 0, "waiting": 0}
    # The on-duty doctor now sees the alert, the patient's report, and acknowledges.
    od = on_duty.api()
    assert [a["id"] for a in od.get("/psych/alerts").json()["items"]] == [alert.pk]
    assert od.get(f"/psych/results/{alert.result_id}").json()["kind"] == "clinical"
    acked = od.post(f"/psych/alerts/{alert.pk}/acknowledge", {"note": "值班已处理"}).json()
    assert acked["status"] == "acknowledged" and acked["acknowledged_by_id"] == on_duty.user.pk
    actions = list(AlertEvent.objects.filter(alert=alert).order_by("id").values_list("action", flat=True))
    assert actions == ["raised", "notified", "no_on_duty", "escalated", "acknowledged"]
    # The doctor from another department never saw it.
    assert elsewhere.api().get("/psych/alerts").json()["items"] == []


@pytest.mark.django_db
def test_the_periodic_task_runs_the_sweep(care, settings) -> None:
    settings.PSYCH_ALERT_ACK_MINUTES = 1
    assign_and_submit(care, "PHQ-9", PHQ9_ITEM9)
    alert = Alert.objects.get()
    Alert.objects.filter(pk=alert.pk).update(ack_deadline=timezone.now() - dt.timedelta(seconds=1))
    on_duty = make_doctor("dutydoc2")
    now = timezone.now()
    DutyShift.objects.create(
        department="精神心理科",
        doctor=on_duty.user,
        starts_at=now - dt.timedelta(hours=1),
        ends_at=now + dt.timedelta(hours=1),
    )
    escalate_overdue_alerts.call_local()
    assert Alert.objects.get().escalated_to_id == on_duty.user.pk


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
async def test_the_assigning_doctor_gets_the_alert_live() -> None:
    from apps.im import services as im_services
    from tests.conftest import make_patient

    from .conftest import add_patient

    def setup() -> Any:
        doctor = make_doctor("livedoc")
        account = make_patient("13900000031", "李四")
        me = add_patient(account, "李四")
        im_services.conversation_for_pair(staff=doctor.user, patient=account.user)
        return doctor, account, me

    doctor, account, me = await sync_to_async(setup)()
    comm = await _client(doctor.user)

    def submit() -> None:
        r = doctor.api().post("/psych/assignments", {"patient_id": me.pk, "scale_codes": ["PHQ-9"], "due_date": due()})
        aid = r.json()["items"][0]["id"]
        assert account.api().post(f"/psych/assignments/{aid}/submit", {"answers": PHQ9_ITEM9}).status_code == 200

    await sync_to_async(submit)()
    events = []
    for _ in range(4):
        frame = await comm.receive_json_from(timeout=5)
        events.append(frame)
        if frame.get("event") == "psych.alert.raised":
            break
    raised = next(e for e in events if e.get("event") == "psych.alert.raised")
    assert raised["topic"] == f"user:{doctor.user.pk}"
    assert raised["data"]["patient_name"] == "李四" and raised["data"]["scale_code"] == "PHQ-9"
    assert raised["data"]["status"] == "open"
    await comm.disconnect()

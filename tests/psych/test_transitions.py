"""Assignment and alert lifecycles (apps.core.lifecycle): an action the table
does not allow answers its code and writes nothing (no event row, no audit
record, no log entry, nothing published); rows carry ``allowed_actions``."""

from __future__ import annotations

from typing import Any

import pytest

from apps.audit.models import AuditEvent
from apps.core.models import TransitionEvent
from apps.psych.models import Alert, AlertEvent, Assignment

from .conftest import due
from .test_alerts import PHQ9_ITEM9, assign_and_submit
from .test_flow import PHQ9_ANSWERS

pytestmark = pytest.mark.django_db


def _written() -> tuple[int, int, int]:
    return TransitionEvent.objects.count(), AuditEvent.objects.count(), AlertEvent.objects.count()


def test_an_illegal_assignment_transition_is_refused_and_writes_nothing(
    care, django_capture_on_commit_callbacks
) -> None:
    d, p = care.doctor.api(), care.account.api()
    body = {"patient_id": care.me.pk, "scale_codes": ["PHQ-9"], "due_date": due()}
    [item] = d.post("/psych/assignments", body).json()["items"]
    assert item["allowed_actions"] == ["cancel"]
    assert p.get(f"/psych/assignments/{item['id']}").json()["allowed_actions"] == ["answer", "submit"]
    assert p.post(f"/psych/assignments/{item['id']}/submit", {"answers": PHQ9_ANSWERS}).status_code == 200
    [row] = d.get("/psych/assignments", patient_id=care.me.pk).json()["items"]
    assert row["allowed_actions"] == []  # submitted: final

    before = _written()
    with django_capture_on_commit_callbacks() as published:
        r = d.post(f"/psych/assignments/{item['id']}/cancel")
    assert r.status_code == 409
    assert r.json()["code"] == "psych.transition_refused"
    assert r.json()["message"] == "当前状态为“已完成”，不能执行该操作"
    assert r.json()["detail"] == {"status": "submitted", "action": "cancel"}
    assert _written() == before
    assert published == []
    a = Assignment.objects.get(pk=item["id"])
    assert (a.status, a.cancelled_at) == ("submitted", None)


def test_an_illegal_alert_transition_is_refused_and_writes_nothing(care, django_capture_on_commit_callbacks) -> None:
    assign_and_submit(care, "PHQ-9", PHQ9_ITEM9)
    alert = Alert.objects.get()
    d = care.doctor.api()
    assert d.get("/psych/alerts").json()["items"][0]["allowed_actions"] == ["acknowledge"]

    def refused(action: str, body: dict[str, Any]) -> None:
        before = _written()
        with django_capture_on_commit_callbacks() as published:
            r = d.post(f"/psych/alerts/{alert.pk}/{action}", body)
        assert r.status_code == 409 and r.json()["code"] == "psych.transition_refused", r.json()
        assert "不能执行该操作" in r.json()["message"]
        assert _written() == before
        assert published == []

    refused("close", {"note": "还没确认就关闭"})  # open -> close is not in the table
    assert Alert.objects.get().closed_at is None

    with django_capture_on_commit_callbacks() as published:
        acked = d.post(f"/psych/alerts/{alert.pk}/acknowledge", {"note": "已电话联系"}).json()
    assert len(published) == 1  # a legal one does publish (psych.alert.acknowledged), after commit
    assert acked["allowed_actions"] == ["close"]
    [event] = TransitionEvent.objects.filter(object_type="psych.alert", object_id=str(alert.pk))
    assert (event.action, event.from_status, event.to_status, event.actor_id, event.reason) == (
        "acknowledge",
        "open",
        "acknowledged",
        care.doctor.user.pk,
        "",  # the note is clinical text: only in the alert's own (encrypted) log (ADR 0038)
    )
    assert alert.events.get(action="acknowledged").note == "已电话联系"
    refused("acknowledge", {"note": "再确认一次"})  # acknowledged -> acknowledge is not either

    closed = d.post(f"/psych/alerts/{alert.pk}/close", {"note": "已随访"}).json()
    assert closed["status"] == "closed" and closed["allowed_actions"] == []

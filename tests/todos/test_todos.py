"""GET /api/v1/todos: one answer per user from every module's provider, in the
order people act on them, and a failing provider never blanks the rest."""

from __future__ import annotations

from typing import Any

import pytest

from apps.im import services as im_services
from apps.todos import registry
from apps.todos.registry import Todo
from tests.conftest import make_patient, make_staff
from tests.psych.conftest import Care, due
from tests.psych.test_alerts import PHQ9_ITEM9

pytestmark = pytest.mark.django_db


def todos(persona: Any) -> dict[str, Any]:
    r = persona.api().get("/todos/")
    assert r.status_code == 200, r.json()
    body: dict[str, Any] = r.json()
    return body


def kinds(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["kind"]: t for t in body["items"]}


def test_a_new_patient_has_nothing_to_do(care: Care) -> None:
    body = todos(make_patient("13900000099", "赵六"))
    assert body == {"items": [], "total": 0, "partial": False}


def test_scales_to_fill_for_the_patient_and_alerts_and_reports_for_the_doctor(care: Care) -> None:
    # Two scales for the child; none yet for the doctor to act on.
    r = care.doctor.api().post(
        "/psych/assignments", {"patient_id": care.child.pk, "scale_codes": ["PHQ-9", "GAD-7"], "due_date": due()}
    )
    assert r.status_code == 201, r.json()
    mine = kinds(todos(care.account))
    fill = mine["psych.scales_to_fill"]
    assert (fill["count"], fill["title"], fill["page"], fill["urgent"]) == (
        2,
        "待填写的心理量表",
        "/pages/psych/list",
        False,
    )
    assert fill["detail"].startswith("GAD-7、PHQ-9，") and fill["detail"].endswith("前完成")
    assert "psych.alerts" not in kinds(todos(care.doctor))

    # The patient submits PHQ-9 with item 9 positive: one alert and one report to sign.
    phq = next(a for a in r.json()["items"] if a["scale"]["code"] == "PHQ-9")
    assert care.account.api().post(f"/psych/assignments/{phq['id']}/submit", {"answers": PHQ9_ITEM9}).status_code == 200
    assert kinds(todos(care.account))["psych.scales_to_fill"]["count"] == 1
    doc = todos(care.doctor)
    alerts, sign = kinds(doc)["psych.alerts"], kinds(doc)["psych.reports_to_sign"]
    assert (alerts["count"], alerts["urgent"], alerts["route"]) == (1, True, "psych-alerts")
    assert alerts["due_at"] is not None and "前确认" in alerts["detail"]
    assert (sign["count"], sign["urgent"], sign["route"]) == (1, False, "psych")
    assert doc["items"][0]["kind"] == "psych.alerts"  # urgent first

    # Another doctor sees none of it: to-dos follow the same authorisation as the lists.
    other = make_staff("doctor", "otherdoc")
    assert todos(other)["items"] == []


def test_unread_messages_for_both_sides(care: Care) -> None:
    im_services.message_send(
        conversation_id=care.conversation.pk,
        sender=care.account.user,
        kind="text",
        body={"text": "医生您好"},
        client_msg_id="t1",
    )
    doc = kinds(todos(care.doctor))["im.unread"]
    assert (doc["title"], doc["count"], doc["route"]) == ("未读的患者消息", 1, "im")
    assert "im.unread" not in kinds(todos(care.account))  # one's own message is read
    im_services.message_send(
        conversation_id=care.conversation.pk,
        sender=care.doctor.user,
        kind="text",
        body={"text": "请讲"},
        client_msg_id="t2",
    )
    pat = kinds(todos(care.account))["im.unread"]
    assert (pat["title"], pat["page"]) == ("未读消息", "/pages/im/list")


def test_a_failing_provider_is_left_out_and_flagged(care: Care, caplog: pytest.LogCaptureFixture) -> None:
    def broken(user: Any) -> list[Todo]:
        raise RuntimeError("boom")

    registry.register("zz_broken", broken)
    try:
        r = care.doctor.api().post(
            "/psych/assignments", {"patient_id": care.me.pk, "scale_codes": ["PHQ-9"], "due_date": due()}
        )
        assert r.status_code == 201
        body = todos(care.account)
        assert body["partial"] is True
        # the others still answer: the scale to fill and the unread card the doctor's assignment posted
        assert sorted(t["kind"] for t in body["items"]) == ["im.unread", "psych.scales_to_fill"]
        assert "todo provider zz_broken failed" in caplog.text
    finally:
        registry._providers.pop("zz_broken", None)


def test_signed_out_is_refused() -> None:
    from django.test import Client

    r = Client().get("/api/v1/todos/")
    assert r.status_code == 401 and r.json()["code"] == "auth.unauthenticated"


def test_the_auditor_sees_the_last_days_anomalies(care: Care) -> None:
    from apps.audit.services import audit_record

    auditor = make_staff("auditor", "todoauditor")
    assert todos(auditor)["items"] == []
    audit_record(action="auth.login_failed", actor_username="x", result="failed")
    t = kinds(todos(auditor))["audit.anomalies"]
    assert (t["count"], t["urgent"], t["route"]) == (1, False, "audit")
    audit_record(action="psych.access_denied", actor=care.doctor.user, result="denied")
    t = kinds(todos(auditor))["audit.anomalies"]
    assert (t["count"], t["urgent"]) == (2, True) and "越权访问 1 次" in t["detail"]
    assert "audit.anomalies" not in kinds(todos(care.doctor))  # auditors only

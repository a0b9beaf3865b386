"""apps.core.lifecycle: the table decides, each status change leaves one event
row, refusals carry a stable code and write nothing."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.audit.models import AuditEvent
from apps.core.lifecycle import AuditEntry, TransitionRefused, allowed_actions, transition
from apps.core.models import TransitionEvent
from apps.psych.models import Assignment
from apps.psych.states import ALERT_TRANSITIONS, ASSIGNMENT_TRANSITIONS
from tests.psych.conftest import due
from tests.psych.test_flow import PHQ9_ANSWERS

TABLE = {("draft", "send"): "sent", ("sent", "send"): "sent", ("sent", "cancel"): "cancelled"}


def test_allowed_actions_follow_the_table() -> None:
    assert allowed_actions(TABLE, "draft") == ["send"]
    assert allowed_actions(TABLE, "sent") == ["send", "cancel"]
    assert allowed_actions(TABLE, "sent", among=("cancel",)) == ["cancel"]
    assert allowed_actions(TABLE, "cancelled") == []
    # The real tables: an open alert can be escalated or acknowledged, a closed one nothing.
    assert allowed_actions(ALERT_TRANSITIONS, "open") == ["escalate", "acknowledge"]
    assert allowed_actions(ALERT_TRANSITIONS, "closed") == []
    assert allowed_actions(ASSIGNMENT_TRANSITIONS, "submitted") == []


def _assignment(care) -> Assignment:
    body = {"patient_id": care.me.pk, "scale_codes": ["PHQ-9"], "due_date": due()}
    r = care.doctor.api().post("/psych/assignments", body)
    return Assignment.objects.get(pk=r.json()["items"][0]["id"])


@pytest.mark.django_db
def test_every_status_change_writes_one_event_row(care) -> None:
    a = _assignment(care)
    p = care.account.api()
    assert p.post(f"/psych/assignments/{a.pk}/answers", {"answers": {"1": 1}}).status_code == 200
    assert p.post(f"/psych/assignments/{a.pk}/answers", {"answers": {"2": 1}}).status_code == 200
    assert p.post(f"/psych/assignments/{a.pk}/submit", {"answers": PHQ9_ANSWERS}).status_code == 200
    rows = TransitionEvent.objects.filter(object_type="psych.assignment", object_id=str(a.pk)).order_by("id")
    # The second answer keeps the status "in_progress": saved, but no status change to log.
    assert [(e.action, e.from_status, e.to_status, e.actor_id) for e in rows] == [
        ("answer", "assigned", "in_progress", care.account.user.pk),
        ("submit", "in_progress", "submitted", care.account.user.pk),
    ]


@pytest.mark.django_db
def test_transition_locks_the_row_and_reads_its_status_there(care) -> None:
    a = _assignment(care)
    stale = Assignment.objects.get(pk=a.pk)
    Assignment.objects.filter(pk=a.pk).update(status=Assignment.Status.CANCELLED)
    with CaptureQueriesContext(connection) as queries, pytest.raises(TransitionRefused) as refused:
        # The instance still says "assigned"; the locked row says "cancelled".
        transition(
            stale,
            "answer",
            table=ASSIGNMENT_TRANSITIONS,
            actor=care.account.user,
            code="test.refused",
            audit=AuditEntry(action="test.answer", object_type="psych_assignment", object_id=a.pk),
        )
    assert any("FOR UPDATE" in q["sql"] for q in queries.captured_queries)
    assert refused.value.code == "test.refused"
    assert refused.value.message == "当前状态为“已取消”，不能执行该操作"
    assert refused.value.detail == {"status": "cancelled", "action": "answer"}
    assert not TransitionEvent.objects.filter(object_id=str(a.pk)).exists()
    assert not AuditEvent.objects.filter(action="test.answer").exists()

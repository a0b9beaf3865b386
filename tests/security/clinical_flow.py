"""One run of the clinical flows whose free text must not be readable at rest nor land
in the audit chain (ADR 0038): a psych scale assigned with a note, answered (a draft,
then submitted with PHQ-9 item 9 > 0 so the critical alert fires), reviewed with a
note, the alert acknowledged and closed with notes; and IM texts sent through the
HTTP API (single-statement insert) and the socket's group-commit batch."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from apps.im import services as im_services
from apps.psych.models import Alert, Assignment, Result
from tests.conftest import Persona, make_patient
from tests.psych.conftest import add_patient, make_doctor

ASSIGN_NOTE = "哨兵甲：请在安静的环境下独立完成"
REVIEW_NOTE = "哨兵乙：抑郁情绪明显，建议药物治疗"
ACK_NOTE = "哨兵丙：已电话联系患者家属"
CLOSE_NOTE = "哨兵丁：已安排明日门诊复诊"
API_TEXT = "哨兵戊：我最近整夜睡不着"
BATCH_TEXT = "哨兵己：有时候觉得活着没意思"
DRAFT = {"1": 2, "2": 3}
ANSWERS = {str(n): 1 for n in range(3, 9)} | {"9": 2}  # with DRAFT: total 13, item 9 positive
CRITICAL_CODE = "suicide_risk"  # PHQ-9's critical rule (apps/psych/scales/phq9.json)
FLAG_CODE = "refer"  # its total >= 10 flag
# Texts that must never be found in plain: at rest, or in any audit detail.
SECRETS = (ASSIGN_NOTE, REVIEW_NOTE, ACK_NOTE, CLOSE_NOTE, API_TEXT, BATCH_TEXT)
CLINICAL_WORDS = (CRITICAL_CODE, FLAG_CODE, "自伤", "自杀", "转诊", "抑郁")


@dataclass
class Flow:
    doctor: Persona
    account: Persona
    assignment: Assignment
    result: Result
    alert: Alert
    conversation_id: int


def run() -> Flow:
    doctor = make_doctor("atrestdoc")
    account = make_patient("13900000071", "王五")
    me = add_patient(account, "王五")
    conv = im_services.conversation_for_pair(staff=doctor.user, patient=account.user)
    d, p = doctor.api(), account.api()
    due = (timezone.localdate() + dt.timedelta(days=7)).isoformat()

    r = d.post(
        "/psych/assignments", {"patient_id": me.pk, "scale_codes": ["PHQ-9"], "due_date": due, "note": ASSIGN_NOTE}
    )
    assert r.status_code == 201, r.json()
    aid = r.json()["items"][0]["id"]
    r = p.post(f"/psych/assignments/{aid}/answers", {"answers": DRAFT})
    assert r.status_code == 200, r.json()
    r = p.post(f"/psych/assignments/{aid}/submit", {"answers": ANSWERS})
    assert r.status_code == 200 and r.json()["needs_help"] is True, r.json()
    result = Result.objects.get(assignment_id=aid)
    r = d.post(f"/psych/results/{result.pk}/sign", {"note": REVIEW_NOTE})
    assert r.status_code in (200, 201), r.json()
    alert = Alert.objects.get(result=result)
    assert d.post(f"/psych/alerts/{alert.pk}/acknowledge", {"note": ACK_NOTE}).status_code == 200
    assert d.post(f"/psych/alerts/{alert.pk}/close", {"note": CLOSE_NOTE}).status_code == 200

    sent = p.post(
        f"/im/conversations/{conv.pk}/messages", {"client_msg_id": "rest-1", "kind": "text", "body": {"text": API_TEXT}}
    )
    assert sent.status_code == 201, sent.json()
    # The socket's send path: apps.im.realtime hands each frame to this group commit.
    [batched] = im_services.message_send_batch(
        [
            im_services.SendRequest(
                conversation_id=conv.pk, sender=account.user, kind="text", body={"text": BATCH_TEXT},
                client_msg_id="rest-2",
            )
        ]
    )  # fmt: skip
    assert isinstance(batched, im_services.SendResult), batched
    return Flow(
        doctor=doctor,
        account=account,
        assignment=Assignment.objects.get(pk=aid),
        result=result,
        alert=Alert.objects.get(pk=alert.pk),
        conversation_id=conv.pk,
    )


def plain(values: Any) -> str:
    """Everything in ``values`` as one string, to search for forbidden text."""
    import json

    return json.dumps(values, ensure_ascii=False, default=str)

"""A recall in a conversation the caller is not a member of answers 403 ``im.not_member``,
and the route declares it (issue 11: schemathesis found the 403 undocumented)."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.accounts.roles import Role
from apps.im import services
from apps.im.models import Message
from tests.conftest import make_patient, make_staff

pytestmark = pytest.mark.django_db


def test_a_non_member_recall_is_403_not_member_and_declared() -> None:
    doctor = make_staff(Role.DOCTOR, "recalldoc")
    patient = make_patient("13900000031", "撤回患者")
    outsider = make_patient("13900000032", "旁人")
    conv = services.conversation_for_pair(staff=doctor.user, patient=patient.user)
    sent = doctor.api().post(
        f"/im/conversations/{conv.pk}/messages", {"client_msg_id": "r-1", "kind": "text", "body": {"text": "您好"}}
    )
    assert sent.status_code == 201

    r = outsider.api().post(f"/im/conversations/{conv.pk}/messages/1/recall")
    assert r.status_code == 403, r.content
    assert r.json()["code"] == "im.not_member" and r.json()["message"] == "您不是该会话成员"
    assert Message.objects.get(conversation=conv, seq=1).recalled_at is None
    assert Message.objects.filter(conversation=conv).count() == 1  # no recall event written

    spec = Client().get("/api/v1/openapi.json").json()
    responses = spec["paths"]["/api/v1/im/conversations/{conversation_id}/messages/{seq}/recall"]["post"]["responses"]
    assert responses["403"]["content"]["application/json"]["schema"]["x-error-codes"] == ["im.not_member"]

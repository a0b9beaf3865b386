"""The conversation list as each side reads it (issue 10, defect 7): nobody sees
their own name as the chat's title, and one's own messages are never unread."""

from __future__ import annotations

import pytest

from apps.im import services as im_services
from tests.conftest import make_patient, make_staff

pytestmark = pytest.mark.django_db


def test_titles_leave_out_the_viewers_name_and_own_messages_are_not_unread() -> None:
    doctor = make_staff("doctor", "viewdoc")
    account = make_patient("13900000321", "王小丽")
    conv = im_services.conversation_for_pair(staff=doctor.user, patient=account.user)
    assert conv.title == f"{doctor.user.display_name} · 王小丽"
    im_services.message_send(
        conversation_id=conv.pk, sender=account.user, kind="text", body={"text": "您好"}, client_msg_id="a1"
    )
    im_services.message_send(
        conversation_id=conv.pk, sender=account.user, kind="text", body={"text": "在吗"}, client_msg_id="a2"
    )
    mine = account.api().get("/im/conversations").json()["items"][0]
    assert mine["title"] == doctor.user.display_name  # the patient reads the doctor's name, not their own
    assert mine["unread"] == 0  # their own two messages
    theirs = doctor.api().get("/im/conversations").json()["items"][0]
    assert theirs["title"] == "王小丽" and theirs["unread"] == 2
    im_services.message_send(
        conversation_id=conv.pk, sender=doctor.user, kind="text", body={"text": "请讲"}, client_msg_id="d1"
    )
    assert account.api().get("/im/conversations").json()["items"][0]["unread"] == 1

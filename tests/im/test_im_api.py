from __future__ import annotations

import datetime as dt
import io

import pytest
from django.test import Client
from django.utils import timezone

from apps.accounts.models import SandboxOutbox
from apps.accounts.roles import Role
from apps.audit.models import AuditEvent
from apps.im import services
from apps.im.models import Conversation, Member, Message
from apps.im.tasks import notify_offline_members
from tests.conftest import make_patient, make_staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def pair(db):
    doctor = make_staff(Role.DOCTOR, "imdoc")
    patient = make_patient("13900000011", "聊天患者")
    conv = services.conversation_for_pair(staff=doctor.user, patient=patient.user)
    return doctor, patient, conv


def send(client, conv_id: int, text: str, cmid: str):
    return client.post(
        f"/im/conversations/{conv_id}/messages", {"client_msg_id": cmid, "kind": "text", "body": {"text": text}}
    )


def test_seq_is_gap_free_and_a_retry_is_stored_once(pair) -> None:
    doctor, patient, conv = pair
    d, p = doctor.api(), patient.api()
    first = send(d, conv.pk, "您好", "c-1")
    assert first.status_code == 201 and first.json()["seq"] == 1
    retry = send(d, conv.pk, "您好", "c-1")
    assert retry.status_code == 200 and retry.json()["seq"] == 1
    assert send(p, conv.pk, "医生好", "c-1").json()["seq"] == 2  # client ids are per sender
    assert send(d, conv.pk, "请描述症状", "c-2").json()["seq"] == 3
    assert list(Message.objects.filter(conversation=conv).order_by("seq").values_list("seq", flat=True)) == [1, 2, 3]
    assert Conversation.objects.get(pk=conv.pk).last_seq == 3


def test_history_pages_are_exact(pair) -> None:
    doctor, patient, conv = pair
    d = doctor.api()
    for n in range(7):
        send(d, conv.pk, f"m{n}", f"h-{n}")
    p = patient.api()
    page = p.get(f"/im/conversations/{conv.pk}/messages", after_seq=2, limit=3).json()
    assert [m["seq"] for m in page["items"]] == [3, 4, 5] and page["has_more"]
    page = p.get(f"/im/conversations/{conv.pk}/messages", after_seq=5, limit=3).json()
    assert [m["seq"] for m in page["items"]] == [6, 7] and not page["has_more"]
    back = p.get(f"/im/conversations/{conv.pk}/messages", before_seq=4, limit=2).json()
    assert [m["seq"] for m in back["items"]] == [2, 3] and back["has_more"]


def test_a_non_member_can_neither_read_nor_send(pair) -> None:
    _doctor, _patient, conv = pair
    stranger = make_patient("13900000012", "路人").api()
    r = stranger.get(f"/im/conversations/{conv.pk}/messages")
    assert r.status_code == 403 and r.json()["code"] == "im.not_member"
    r = send(stranger, conv.pk, "hi", "x-1")
    assert r.status_code == 404
    assert Message.objects.count() == 0 and Conversation.objects.get(pk=conv.pk).last_seq == 0
    assert stranger.get("/im/conversations").json()["items"] == []


def test_receipts_are_cumulative_and_drive_unread_counts(pair) -> None:
    doctor, patient, conv = pair
    d, p = doctor.api(), patient.api()
    for n in range(4):
        send(d, conv.pk, f"m{n}", f"r-{n}")
    listing = p.get("/im/conversations").json()["items"]
    assert listing[0]["unread"] == 4 and listing[0]["last_message"]["seq"] == 4
    assert p.post(f"/im/conversations/{conv.pk}/read", {"seq": 3}).json()["read_seq"] == 3
    assert p.post(f"/im/conversations/{conv.pk}/read", {"seq": 1}).json()["read_seq"] == 3  # never backwards
    assert p.post(f"/im/conversations/{conv.pk}/read", {"seq": 99}).json()["read_seq"] == 4  # never past the end
    assert p.get("/im/conversations").json()["items"][0]["unread"] == 0


def test_recall_within_two_minutes_is_an_event_and_later_is_refused(pair) -> None:
    doctor, patient, conv = pair
    d = doctor.api()
    send(d, conv.pk, "发错了", "rc-1")
    r = d.post(f"/im/conversations/{conv.pk}/messages/1/recall")
    assert r.status_code == 200 and r.json()["kind"] == "recall" and r.json()["body"] == {"seq": 1}
    items = patient.api().get(f"/im/conversations/{conv.pk}/messages", after_seq=0).json()["items"]
    assert items[0]["recalled"] and items[0]["body"] == {}
    assert Message.objects.filter(conversation=conv).count() == 2  # nothing deleted
    send(d, conv.pk, "旧消息", "rc-2")
    Message.objects.filter(seq=3).update(created_at=timezone.now() - dt.timedelta(minutes=2, seconds=1))
    r = d.post(f"/im/conversations/{conv.pk}/messages/3/recall")
    assert r.status_code == 409 and r.json()["code"] == "im.recall_expired"
    assert Message.objects.get(conversation=conv, seq=3).recalled_at is None
    # Only the sender may recall.
    assert patient.api().post(f"/im/conversations/{conv.pk}/messages/3/recall").status_code == 404


def test_cards_come_from_services_not_clients(pair) -> None:
    doctor, _patient, conv = pair
    r = doctor.api().post(
        f"/im/conversations/{conv.pk}/messages", {"client_msg_id": "k", "kind": "card", "body": {"card_type": "order"}}
    )
    assert r.status_code == 422 and r.json()["code"] == "im.kind_forbidden"
    card = services.card_post(
        conversation=conv,
        sender=doctor.user,
        card_type="scale_assignment",
        data={"assignment": 7, "title": "PHQ-9"},
        client_msg_id="card-7",
    )
    assert card["kind"] == "card" and card["body"]["card_type"] == "scale_assignment"
    assert card["seq"] == 1


def test_closed_conversations_take_no_messages(pair) -> None:
    doctor, _, conv = pair
    Conversation.objects.filter(pk=conv.pk).update(closed_at=timezone.now())
    r = send(doctor.api(), conv.pk, "还在吗", "cl-1")
    assert r.status_code == 409 and r.json()["code"] == "im.conversation_closed"


JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 200
AMR = b"#!AMR\n" + b"\x00" * 100


def _upload(persona, conv_id: int, name: str, data: bytes, **extra):
    client = Client()
    return (
        client.post(
            f"/api/v1/im/conversations/{conv_id}/attachments",
            {"file": io.BytesIO(data), **extra},
            HTTP_AUTHORIZATION=f"Bearer {persona.api().token}",
            format="multipart",
        )
        if False
        else client.post(
            f"/api/v1/im/conversations/{conv_id}/attachments",
            {"file": _named(data, name), **extra},
            HTTP_AUTHORIZATION=f"Bearer {persona.api().token}",
        )
    )


def _named(data: bytes, name: str) -> io.BytesIO:
    f = io.BytesIO(data)
    f.name = name
    return f


def test_attachments_are_sniffed_limited_authorised_and_audited(pair, settings, tmp_path) -> None:
    settings.UPLOAD_ROOT = tmp_path
    doctor, patient, conv = pair
    r = _upload(patient, conv.pk, "photo.png", JPEG)  # the name lies; the bytes decide
    assert r.status_code == 201 and r.json()["content_type"] == "image/jpeg"
    image_id = r.json()["id"]
    assert _upload(patient, conv.pk, "evil.jpg", b"<?php echo 1; ?>" * 4).json()["code"] == "im.attachment_type"
    assert _upload(patient, conv.pk, "v.amr", AMR).json()["code"] == "validation_error"  # voice needs a duration
    voice = _upload(patient, conv.pk, "v.amr", AMR, duration_ms=3200)
    assert voice.status_code == 201 and voice.json()["duration_ms"] == 3200
    big = _upload(patient, conv.pk, "big.jpg", b"\xff\xd8\xff" + b"\x00" * (10 * 1024 * 1024))
    assert big.status_code == 413
    sent = patient.api().post(
        f"/im/conversations/{conv.pk}/messages",
        {"client_msg_id": "v1", "kind": "voice", "body": {"attachment": voice.json()["id"]}},
    )
    assert sent.status_code == 201 and sent.json()["body"]["duration_ms"] == 3200
    fetched = Client().get(f"/api/v1/im/attachments/{image_id}", HTTP_AUTHORIZATION=f"Bearer {doctor.api().token}")
    assert fetched.status_code == 200 and b"".join(fetched.streaming_content) == JPEG
    assert AuditEvent.objects.filter(action="im.attachment_read", actor_id=doctor.user.pk).exists()
    stranger = make_patient("13900000013", "路人")
    denied = Client().get(f"/api/v1/im/attachments/{image_id}", HTTP_AUTHORIZATION=f"Bearer {stranger.api().token}")
    assert denied.status_code == 404
    assert AuditEvent.objects.filter(action="im.attachment_denied", actor_id=stranger.user.pk).exists()


def test_offline_members_are_notified_once_per_window(pair, django_capture_on_commit_callbacks) -> None:
    doctor, patient, conv = pair
    from apps.im.presence import presence_touch

    presence_touch(doctor.user.pk)  # the doctor is online; the patient is not
    services.message_send(
        conversation_id=conv.pk, sender=doctor.user, kind="text", body={"text": "复查结果出来了"}, client_msg_id="n1"
    )
    # The notice leaves through the outbox after commit.
    with django_capture_on_commit_callbacks(execute=True):
        told = notify_offline_members.call_local(conv.pk)
    assert told == [patient.user.pk]
    assert SandboxOutbox.objects.filter(channel="sms", body__contains="1条未读").count() == 1
    services.message_send(
        conversation_id=conv.pk, sender=doctor.user, kind="text", body={"text": "记得按时服药"}, client_msg_id="n2"
    )
    assert notify_offline_members.call_local(conv.pk) == []  # within the window: nothing more
    Member.objects.filter(user=patient.user).update(last_notified_at=timezone.now() - dt.timedelta(minutes=6))
    Member.objects.filter(user=patient.user).update(read_seq=2)
    assert notify_offline_members.call_local(conv.pk) == []  # read everything: nothing to tell


def test_group_commit_gives_each_send_its_own_outcome(pair) -> None:
    doctor, patient, conv = pair
    stranger = make_patient("13900000014", "路人")
    requests = [
        services.SendRequest(conv.pk, doctor.user, "text", {"text": "一"}, "g-1"),
        services.SendRequest(conv.pk, stranger.user, "text", {"text": "闯入"}, "g-x"),  # not a member
        services.SendRequest(conv.pk, patient.user, "text", {"text": "二"}, "g-2"),
        services.SendRequest(conv.pk, doctor.user, "text", {"text": "一"}, "g-1"),  # retry in the same batch
        services.SendRequest(conv.pk, doctor.user, "text", {"text": ""}, "g-3"),  # invalid
        services.SendRequest(conv.pk, doctor.user, "text", {"text": "三"}, "g-4"),
    ]
    results = services.message_send_batch(requests)
    assert [r.message["seq"] if isinstance(r, services.SendResult) else r.code for r in results] == [
        1,
        "not_found",
        2,
        1,
        "validation_error",
        3,
    ]
    assert [r.duplicate for r in results if isinstance(r, services.SendResult)] == [False, False, True, False]
    assert list(Message.objects.filter(conversation=conv).order_by("seq").values_list("client_msg_id", flat=True)) == [
        "g-1",
        "g-2",
        "g-4",
    ]


def test_group_commit_answers_stored_retries_and_closed_conversations(pair) -> None:
    doctor, patient, conv = pair
    other = services.conversation_for_pair(staff=doctor.user, patient=make_patient("13900000015", "另一位").user)
    first = services.message_send_batch([services.SendRequest(conv.pk, doctor.user, "text", {"text": "一"}, "s-1")])
    assert first[0].message["seq"] == 1
    Conversation.objects.filter(pk=other.pk).update(closed_at=timezone.now())
    results = services.message_send_batch(
        [
            services.SendRequest(conv.pk, doctor.user, "text", {"text": "一"}, "s-1"),  # stored in an earlier batch
            services.SendRequest(conv.pk, patient.user, "text", {"text": "二"}, "s-2"),
            services.SendRequest(other.pk, doctor.user, "text", {"text": "已结束"}, "s-3"),
        ]
    )
    assert results[0].duplicate and results[0].message["seq"] == 1
    assert results[1].message["seq"] == 2 and results[1].notify == (doctor.user.pk,)
    assert results[2].code == "im.conversation_closed"
    assert Conversation.objects.get(pk=conv.pk).last_seq == 2 and Conversation.objects.get(pk=other.pk).last_seq == 0
    assert list(Message.objects.order_by("seq").values_list("client_msg_id", flat=True)) == ["s-1", "s-2"]


def test_a_member_who_left_reads_nothing_from_after_they_left(pair, settings, tmp_path) -> None:
    """Issue 11 finding 3: ``left_at`` is checked on every read. The removed member
    keeps the attachments they could already see, nothing uploaded later, and reads
    no messages (after or before a seq) nor the member list."""
    settings.UPLOAD_ROOT = tmp_path
    doctor, patient, conv = pair
    own = send(patient.api(), conv.pk, "离开前", "l-0").json()["seq"]
    before = _upload(doctor, conv.pk, "before.jpg", JPEG).json()["id"]
    assert services.member_remove(conversation=conv, user=patient.user, actor=doctor.user)
    after = _upload(doctor, conv.pk, "after.jpg", JPEG).json()["id"]
    send(doctor.api(), conv.pk, "离开后", "l-2")

    def fetch(attachment_id: int) -> int:
        auth = f"Bearer {patient.api().token}"
        return Client().get(f"/api/v1/im/attachments/{attachment_id}", HTTP_AUTHORIZATION=auth).status_code

    assert fetch(after) == 404
    assert AuditEvent.objects.filter(action="im.attachment_denied", actor_id=patient.user.pk).exists()
    assert fetch(before) == 200
    p = patient.api()
    for query in ({"after_seq": 0}, {"before_seq": 10}, {}):
        r = p.get(f"/im/conversations/{conv.pk}/messages", **query)
        assert r.status_code == 403 and r.json()["code"] == "im.not_member", (query, r.json())
    assert p.get(f"/im/conversations/{conv.pk}").status_code == 403
    assert p.get("/im/conversations").json()["items"] == []
    # Nor does one who left write, recall included.
    assert send(p, conv.pk, "还在吗", "l-3").status_code == 404
    r = p.post(f"/im/conversations/{conv.pk}/messages/{own}/recall")
    assert r.status_code == 403 and r.json()["code"] == "im.not_member"
    assert not Message.objects.filter(conversation=conv, seq=own, recalled_at__isnull=False).exists()


def test_a_pair_conversation_is_reused_only_while_both_are_members(pair) -> None:
    doctor, patient, conv = pair
    assert services.conversation_for_pair(staff=doctor.user, patient=patient.user).pk == conv.pk
    services.member_remove(conversation=conv, user=patient.user, actor=doctor.user)
    fresh = services.conversation_for_pair(staff=doctor.user, patient=patient.user)
    assert fresh.pk != conv.pk
    card = services.card_post(
        conversation=fresh, sender=doctor.user, card_type="notice", data={"text": "复诊"}, client_msg_id="card-1"
    )
    assert card["conversation"] == fresh.pk

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async

from apps.accounts.roles import Role
from apps.im import services
from apps.im.models import Message
from tests.conftest import make_patient, make_staff
from tests.support.socket_client import SocketClient

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@sync_to_async
def setup_pair() -> tuple[Any, Any, Any, Any]:
    doctor = make_staff(Role.DOCTOR, "sockdoc")
    patient = make_patient("13900000021", "在线患者")
    a = services.conversation_for_pair(staff=doctor.user, patient=patient.user)
    other = make_patient("13900000022", "别的患者")
    b = services.conversation_for_pair(staff=doctor.user, patient=other.user)
    return doctor, patient, a, b


async def test_send_ack_fanout_and_resume() -> None:
    doctor, patient, conv, _ = await setup_pair()
    d, p = await SocketClient.for_user(doctor.user), await SocketClient.for_user(patient.user)
    assert (await p.subscribe(f"conv:{conv.pk}"))["ok"]
    ack = await d.request(
        {"type": "im.send", "id": "1", "conversation": conv.pk, "client_msg_id": "m1", "body": {"text": "您好"}}
    )
    assert ack["ok"] and ack["data"]["seq"] == 1 and not ack["data"]["duplicate"]
    event = await p.receive(timeout=3)
    assert event["event"] == "im.message" and event["data"]["seq"] == 1 and event["data"]["body"] == {"text": "您好"}
    # The ack means committed: the row is there.
    assert await sync_to_async(Message.objects.filter(conversation=conv, seq=1).exists)()
    # A retried send returns the first ack and fans nothing out again.
    again = await d.request(
        {"type": "im.send", "id": "2", "conversation": conv.pk, "client_msg_id": "m1", "body": {"text": "您好"}}
    )
    assert again["data"]["seq"] == 1 and again["data"]["duplicate"]
    assert await p.receive_nothing(timeout=0.3)
    # The patient drops off; the doctor sends three more; the patient resumes from seq 1.
    await p.close()
    for n in range(2, 5):
        await d.request(
            {
                "type": "im.send",
                "id": f"s{n}",
                "conversation": conv.pk,
                "client_msg_id": f"m{n}",
                "body": {"text": f"第{n}条"},
            },
        )
    p = await SocketClient.for_user(patient.user)
    page = await p.request({"type": "im.sync", "id": "sync", "conversation": conv.pk, "after_seq": 1})
    assert [m["seq"] for m in page["data"]["items"]] == [2, 3, 4] and not page["data"]["has_more"]
    receipt = await p.request({"type": "im.read", "id": "r", "conversation": conv.pk, "seq": 4})
    assert receipt["data"]["read_seq"] == 4
    await d.close()
    await p.close()


async def test_a_member_of_a_cannot_touch_b() -> None:
    _doctor, patient, _a, b = await setup_pair()
    p = await SocketClient.for_user(patient.user)
    refused = await p.subscribe(f"conv:{b.pk}")
    assert refused["type"] == "error" and refused["code"] == "topic.forbidden"
    sync = await p.request({"type": "im.sync", "id": "y", "conversation": b.pk, "after_seq": 0})
    assert sync["type"] == "error" and sync["code"] == "im.not_member"
    send = await p.request(
        {"type": "im.send", "id": "x", "conversation": b.pk, "client_msg_id": "z", "body": {"text": "hi"}}
    )
    assert send["type"] == "error" and send["code"] == "not_found"
    typing = await p.request({"type": "im.typing", "id": "t", "conversation": b.pk})
    assert typing["type"] == "error"
    assert not await sync_to_async(Message.objects.filter(conversation=b).exists)()
    await p.close()


async def test_typing_is_ephemeral() -> None:
    doctor, patient, conv, _ = await setup_pair()
    d, p = await SocketClient.for_user(doctor.user), await SocketClient.for_user(patient.user)
    await d.subscribe(f"conv:{conv.pk}")
    await p.request({"type": "im.typing", "id": "t", "conversation": conv.pk})
    event = await d.receive(timeout=3)
    assert event["event"] == "im.typing" and event["data"]["user"] == patient.user.pk
    assert not await sync_to_async(Message.objects.exists)()
    await d.close()
    await p.close()


async def test_members_hear_of_new_messages_on_their_own_topic() -> None:
    doctor, patient, conv, _ = await setup_pair()
    d, p = await SocketClient.for_user(doctor.user), await SocketClient.for_user(patient.user)
    # The patient watches only their own topic, not the conversation.
    assert (await p.subscribe(f"user:{patient.user.pk}"))["ok"]
    assert (await d.subscribe(f"user:{doctor.user.pk}"))["ok"]
    await d.request(
        {"type": "im.send", "id": "1", "conversation": conv.pk, "client_msg_id": "n1", "body": {"text": "新消息"}}
    )
    event = await p.receive(timeout=3)
    assert event["topic"] == f"user:{patient.user.pk}" and event["event"] == "im.notify"
    assert event["data"]["conversation"] == conv.pk and event["data"]["seq"] == 1
    assert await d.receive_nothing(timeout=0.3)  # the sender is not notified of its own message
    await d.close()
    await p.close()


async def test_removed_member_stops_receiving_on_the_open_socket() -> None:
    """Removing a member revokes that one topic on their open sockets, at once and
    without a reconnect; the socket and its other subscriptions keep working."""
    doctor, patient, conv, _ = await setup_pair()
    second = await sync_to_async(
        lambda: services.conversation_create(
            kind="group",
            members=[(doctor.user, "staff"), (patient.user, "patient")],
            title="康复群",
        )
    )()
    d, p = await SocketClient.for_user(doctor.user), await SocketClient.for_user(patient.user)
    for topic in (f"conv:{conv.pk}", f"conv:{second.pk}"):
        assert (await p.subscribe(topic))["ok"]

    async def send(conversation: int, n: int) -> None:
        frame = {"conversation": conversation, "client_msg_id": f"r{n}", "body": {"text": f"第{n}条"}}
        assert (await d.request({"type": "im.send", "id": f"x{n}", **frame}))["ok"]

    await send(conv.pk, 1)
    assert (await p.receive(timeout=3))["data"]["conversation"] == conv.pk

    removed = await sync_to_async(services.member_remove)(conversation=conv, user=patient.user, actor=doctor.user)
    assert removed
    notice = await p.receive(timeout=3)
    assert notice == {"type": "unsubscribed", "topic": f"conv:{conv.pk}", "reason": "member_removed"}

    await send(conv.pk, 2)
    await send(second.pk, 3)
    event = await p.receive(timeout=3)
    assert event["event"] == "im.message" and event["data"]["conversation"] == second.pk, event
    assert await p.receive_nothing(timeout=0.3), "the removed conversation still reaches the socket"
    # Still connected and authorised for its other topics; the removed one is refused.
    again = await p.subscribe(f"conv:{conv.pk}")
    assert again["type"] == "error" and again["code"] == "topic.forbidden"
    assert (await p.request({"type": "ping", "id": "ping"}))["type"] == "pong"
    # Removing again is a no-op that revokes and audits nothing more.
    assert not await sync_to_async(services.member_remove)(conversation=conv, user=patient.user)
    assert await p.receive_nothing(timeout=0.3)
    await d.close()
    await p.close()

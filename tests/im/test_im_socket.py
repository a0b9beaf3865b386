from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from apps.accounts.roles import Role
from apps.im import realtime, services
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


async def test_a_removed_member_cannot_read_on_the_open_socket() -> None:
    """Issue 11 finding 3: membership the socket verified earlier (im.sync, typing)
    is forgotten when the member is removed: nothing after left_at is readable."""
    doctor, patient, conv, _ = await setup_pair()
    d, p = await SocketClient.for_user(doctor.user), await SocketClient.for_user(patient.user)
    assert (await p.subscribe(f"conv:{conv.pk}"))["ok"]
    sync = {"type": "im.sync", "conversation": conv.pk, "after_seq": 0}
    assert (await p.request(sync))["ok"]  # verified (and remembered) while a member
    assert (await p.request({"type": "im.typing", "conversation": conv.pk}))["ok"]
    await sync_to_async(services.member_remove)(conversation=conv, user=patient.user, actor=doctor.user)
    assert (await p.wait_for(type="unsubscribed", timeout=3))["topic"] == f"conv:{conv.pk}"
    frame = {"conversation": conv.pk, "client_msg_id": "after-left", "body": {"text": "离开后"}}
    assert (await d.request({"type": "im.send", **frame}))["ok"]
    refused = await p.request(sync)
    assert refused["type"] == "error" and refused["code"] == "im.not_member", refused
    for other in (
        {"type": "im.typing", "conversation": conv.pk},
        {"type": "im.signal", "conversation": conv.pk, "data": {"state": "ringing"}},
        {"type": "im.read", "conversation": conv.pk, "seq": 1},
    ):
        reply = await p.request(other)
        assert reply["type"] == "error", (other, reply)
    again = await p.subscribe(f"conv:{conv.pk}")
    assert again["type"] == "error" and again["code"] == "topic.forbidden"
    await d.close()
    await p.close()


@sync_to_async
def setup_group(n: int) -> tuple[Any, list[Any]]:
    doctor = make_staff(Role.DOCTOR, "batchdoc")
    people = [make_patient(f"1390000010{i}", f"群成员{i}") for i in range(n)]
    conv = services.conversation_create(
        kind="group",
        members=[(doctor.user, "staff")] + [(p.user, "patient") for p in people],
        title="批量群",
    )
    return conv, [doctor, *people]


MALFORMED: list[dict[str, Any]] = [
    {"kind": []},
    {"kind": {}},
    {"kind": 123},
    {"kind": True},
    {"body": "不是对象"},
    {"body": ["text"]},
    {"body": None},
    {"client_msg_id": 42},
    {"client_msg_id": ["x"]},
    {"client_msg_id": ""},
    {"client_msg_id": "x" * 65},
    {"conversation": True},
    {"conversation": "1"},
    {"conversation": 10**30},
    {"kind": "image", "body": {"attachment": 10**30}},
    {"kind": "image", "body": {"attachment": True}},
    {"body": {"text": 5}},
]


async def test_malformed_sends_never_fail_valid_sends_in_the_same_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 11 finding 2: several users send at once, valid sends interleaved with
    malformed ones. Every valid send is acked and stored; every malformed one gets
    ``validation_error`` alone and stores nothing."""
    from hub.realtime import consumer as consumer_module
    from hub.realtime.batching import GroupCommit

    monkeypatch.setattr(consumer_module, "_limiter", None)
    batches: list[list[Any]] = []

    def recording(requests: list[Any]) -> list[Any]:
        batches.append(requests)
        return services.message_send_batch(requests)

    # One batch in flight: everything sent meanwhile queues into the next ones.
    monkeypatch.setattr(realtime, "_sends", GroupCommit(recording, max_batch=64, max_inflight=1))
    conv, people = await setup_group(4)
    sockets = [await SocketClient.for_user(person.user) for person in people]

    async def run(n: int, sock: SocketClient) -> list[tuple[str, dict[str, Any]]]:
        out = []
        frames = []
        for k in range(8):
            frames.append(("ok", {"client_msg_id": f"u{n}-{k}", "body": {"text": f"用户{n}第{k}条"}}))
            bad = MALFORMED[(n * 8 + k) % len(MALFORMED)]
            frames.append(("bad", {"client_msg_id": f"bad{n}-{k}", "body": {"text": "坏"}, **bad}))
        replies = await asyncio.gather(
            *(sock.request({"type": "im.send", "conversation": conv.pk, **f}, timeout=10) for _, f in frames)
        )
        for (what, f), reply in zip(frames, replies, strict=True):
            out.append((what, {"frame": f, "reply": reply}))
        return out

    results = await asyncio.gather(*(run(n, s) for n, s in enumerate(sockets)))
    acked: list[str] = []
    for what, item in (x for per in results for x in per):
        reply = item["reply"]
        if what == "ok":
            assert reply["type"] == "reply" and reply["ok"], item
            acked.append(item["frame"]["client_msg_id"])
        else:
            assert reply["type"] == "error" and reply["code"] == "validation_error", item
            assert reply["message"] and not reply["message"].isascii(), item
    assert len(acked) == 5 * 8
    stored = await sync_to_async(
        lambda: sorted(Message.objects.filter(conversation=conv).values_list("client_msg_id", flat=True))
    )()
    assert stored == sorted(acked)
    seqs = await sync_to_async(
        lambda: sorted(Message.objects.filter(conversation=conv).values_list("seq", flat=True))
    )()
    assert seqs == list(range(1, 41))  # gap-free
    assert any(len(b) > 1 for b in batches), "the sends never shared a batch"
    for sock in sockets:
        await sock.close()


async def test_a_batch_survives_an_item_that_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    """Even an unexpected error in one item (past the frame checks) fails that item
    only: the batch is redone one send at a time."""
    conv, people = await setup_group(2)
    requests = [
        services.SendRequest(conv.pk, people[0].user, "text", {"text": "好的"}, "ok-1"),
        services.SendRequest(conv.pk, people[1].user, [], {"text": "坏"}, "bad-1"),  # type: ignore[arg-type]
        services.SendRequest(conv.pk, people[2].user, "text", {"text": "收到"}, "ok-2"),
    ]
    results = await sync_to_async(services.message_send_batch)(requests)
    assert isinstance(results[0], services.SendResult) and isinstance(results[2], services.SendResult)
    assert getattr(results[1], "code", None) == "validation_error"
    assert await sync_to_async(Message.objects.filter(conversation=conv).count)() == 2

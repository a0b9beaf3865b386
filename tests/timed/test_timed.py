"""Timed sessions: warnings at 5 and 1 minutes and the hard stop (time travel through the
clock's step, no client connected), one extension, idempotent ends, the IM conversation
closed at the end, events on a subscribed socket."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from apps.accounts.roles import Role
from apps.audit.models import AuditEvent
from apps.core.models import TransitionEvent
from apps.im.errors import ImError
from apps.im.models import Conversation
from apps.im.services import conversation_for_pair, message_send
from apps.timed import services
from apps.timed.clock import Clock
from apps.timed.errors import TimedError
from apps.timed.models import TimedSession
from apps.timed.selectors import session_out
from tests.conftest import make_patient, make_staff
from tests.support.socket_client import SocketClient

from .conftest import KIND, Calls

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


@sync_to_async
def visit(duration: int = 600, extension: int = 300) -> tuple[TimedSession, Any, Any, Conversation]:
    doctor = make_staff(Role.DOCTOR, f"tdoc{TimedSession.objects.count()}")
    patient = make_patient(f"139{TimedSession.objects.count():08d}", "计时患者")
    conv = conversation_for_pair(staff=doctor.user, patient=patient.user, ref_type="test", ref_id="1")
    session = services.session_start(
        KIND, "v1", duration, extension, room_id="", conversation_id=conv.pk, topics=[f"conv:{conv.pk}"]
    )
    return session, doctor, patient, conv


def ts(value: dt.datetime) -> float:
    return value.timestamp()


async def fresh(session: TimedSession) -> TimedSession:
    return await TimedSession.objects.aget(pk=session.pk)


async def test_warnings_at_5_and_1_minutes_and_the_hard_stop_with_no_client(owner: Calls) -> None:
    session, _doctor, patient, conv = await visit(duration=600)
    clock = Clock().install()
    deadline = ts(session.deadline)
    assert (await clock.step(deadline - 590)).warnings == []
    first = await clock.step(deadline - 300)
    assert first.warnings == [(session.pk, 5)] and first.ended == []
    # Each warning once: the same second again, and a new clock (a restarted process), send nothing.
    assert (await clock.step(deadline - 299)).warnings == []
    assert (await Clock().step(deadline - 298)).warnings == []
    row = await fresh(session)
    assert row.warned_5_at == dt.datetime.fromtimestamp(deadline - 300, dt.UTC) and row.warned_1_at is None
    assert session_out(row)["warnings_sent"] == [300]
    assert (await clock.step(deadline - 61)).warnings == []
    assert (await clock.step(deadline - 60)).warnings == [(session.pk, 1)]
    assert (await clock.step(deadline - 0.5)).ended == []
    assert (await fresh(session)).status == TimedSession.Status.RUNNING
    stop = await clock.step(deadline + 0.001)
    assert stop.ended == [session.pk]
    row = await fresh(session)
    assert row.status == TimedSession.Status.ENDED and row.end_reason == "deadline"
    assert row.ended_at == dt.datetime.fromtimestamp(deadline + 0.001, dt.UTC)
    assert row.media_closed_at is not None  # no room: nothing to close
    assert owner.ended == [(session.pk, "deadline")]
    out = session_out(row)
    assert out["status"] == "ended" and out["status_label"] == "已结束" and out["remaining_seconds"] == 0
    assert out["warnings_sent"] == [300, 60] and out["can_extend"] is False
    # The conversation takes no new message (history stays).
    conv_row = await Conversation.objects.aget(pk=conv.pk)
    assert conv_row.closed_at is not None
    with pytest.raises(ImError) as refused:
        await sync_to_async(message_send)(
            conversation_id=conv.pk, sender=patient.user, kind="text", body={"text": "还在吗"}, client_msg_id="late"
        )
    assert refused.value.code == "im.conversation_closed"
    # Stepping on ends nothing twice; the sweep finds nothing; one end transition, one audit record.
    assert (await clock.step(deadline + 5)).ended == []
    assert await sync_to_async(services.sessions_end_overdue)() == 0
    assert owner.ended == [(session.pk, "deadline")]
    assert await TransitionEvent.objects.filter(object_type="timed.timedsession", action="end").acount() == 1
    assert await AuditEvent.objects.filter(action="timed.end").acount() == 1
    assert await AuditEvent.objects.filter(action="im.conversation_close").acount() == 1


async def test_a_subscribed_socket_gets_ticks_warnings_and_the_end(owner: Calls) -> None:
    session, _doctor, patient, conv = await visit(duration=400)
    socket = await SocketClient.for_user(patient.user)
    try:
        assert (await socket.subscribe(f"conv:{conv.pk}"))["ok"]
        clock = Clock().install()
        deadline = ts(session.deadline)
        await clock.step(deadline - 350)
        tick = await socket.wait_for(event="timed.tick", timeout=3)
        assert tick["topic"] == f"conv:{conv.pk}"
        assert tick["data"]["session_id"] == session.pk and tick["data"]["remaining_seconds"] == 350
        assert tick["data"]["deadline"] == session.deadline.isoformat() and tick["data"]["server_now"]
        await clock.step(deadline - 290)
        warning = await socket.wait_for(event="timed.warning", timeout=3)
        assert warning["data"] == {"session_id": session.pk, "minutes_left": 5}
        await clock.step(deadline - 59.5)
        warning = await socket.wait_for(event="timed.warning", timeout=3)
        assert warning["data"] == {"session_id": session.pk, "minutes_left": 1}
        await clock.step(deadline + 0.2)
        ended = await socket.wait_for(event="timed.ended", timeout=3)
        assert ended["data"] == {"session_id": session.pk, "reason": "deadline"}
        closed = await socket.wait_for(event="im.closed", timeout=3)
        assert closed["data"] == {"conversation": conv.pk, "reason": "deadline"}
        # No tick after the end.
        socket.inbox.clear()
        await clock.step(deadline + 1.2)
        assert await socket.receive_nothing(timeout=0.3)
    finally:
        await socket.close()


async def test_extension_once_billed_once_and_a_second_refused_with_nothing_written(owner: Calls) -> None:
    session, doctor, _patient, conv = await visit(duration=600, extension=300)
    clock = Clock().install()
    deadline = ts(session.deadline)
    await clock.step(deadline - 60)  # the 1-minute warning went out
    socket = await SocketClient.for_user(doctor.user)
    try:
        assert (await socket.subscribe(f"conv:{conv.pk}"))["ok"]
        extended = await sync_to_async(services.session_extend)(session.pk, doctor.user)
        assert extended.deadline == session.deadline + dt.timedelta(seconds=300)
        assert owner.extended == [(session.pk, doctor.user.pk)]
        event = await socket.wait_for(event="timed.extended", timeout=3)
        assert event["data"] == {"session_id": session.pk, "deadline": extended.deadline.isoformat()}
    finally:
        await socket.close()
    row = await fresh(session)
    assert row.extended_at is not None and row.extended_by_id == doctor.user.pk
    # The warnings belong to the old deadline: the 1-minute one is given again before the new one.
    assert row.warned_1_at is None
    out = session_out(row)
    assert out["extended"] is True and out["can_extend"] is False and out["extension_seconds"] == 300
    events_before = await TransitionEvent.objects.acount()
    audits_before = await AuditEvent.objects.filter(action="timed.extend").acount()
    assert audits_before == 1
    with pytest.raises(TimedError) as again:
        await sync_to_async(services.session_extend)(session.pk, doctor.user)
    assert again.value.code == "timed.already_extended" and again.value.status == 409
    assert owner.extended == [(session.pk, doctor.user.pk)]
    assert (await fresh(session)).deadline == extended.deadline
    assert await TransitionEvent.objects.acount() == events_before
    assert await AuditEvent.objects.filter(action="timed.extend").acount() == 1
    # The old deadline passes: still running; the new one ends it.
    assert (await clock.step(deadline + 1)).ended == []
    assert (await clock.step(ts(extended.deadline) - 60)).warnings == [(session.pk, 1)]
    assert (await clock.step(ts(extended.deadline))).ended == [session.pk]
    with pytest.raises(TimedError) as ended:
        await sync_to_async(services.session_extend)(session.pk, doctor.user)
    assert ended.value.code == "timed.transition_refused"


async def test_a_failing_bill_writes_nothing_and_no_extension_product_is_refused(owner: Calls) -> None:
    session, doctor, _patient, _conv = await visit(duration=600, extension=300)
    owner.fail_extend = True
    with pytest.raises(RuntimeError):
        await sync_to_async(services.session_extend)(session.pk, doctor.user)
    row = await fresh(session)
    assert row.deadline == session.deadline and row.extended_at is None
    assert await AuditEvent.objects.filter(action="timed.extend").acount() == 0
    assert session_out(row)["can_extend"] is True
    # A product without an extension.
    plain = await sync_to_async(services.session_start)(KIND, "v2", 60, 0)
    with pytest.raises(TimedError) as refused:
        await sync_to_async(services.session_extend)(plain.pk, doctor.user)
    assert refused.value.code == "timed.extension_not_allowed"
    assert session_out(plain)["can_extend"] is False


async def test_end_is_idempotent_and_a_deadline_end_before_the_deadline_does_nothing(owner: Calls) -> None:
    session, doctor, _patient, _conv = await visit(duration=600)
    early = await sync_to_async(services.session_end)(session.pk, "deadline")
    assert early.status == TimedSession.Status.RUNNING and owner.ended == []
    assert await sync_to_async(services.session_end_if_due)(session.pk) == "not_due"
    ended = await sync_to_async(services.session_end)(session.pk, "ended", doctor.user)
    assert ended.status == TimedSession.Status.ENDED and ended.end_reason == "ended"
    again = await sync_to_async(services.session_end)(session.pk, "terminated", doctor.user)
    assert again.end_reason == "ended" and owner.ended == [(session.pk, "ended")]
    assert await sync_to_async(services.session_end_if_due)(session.pk) == "ended_before"
    assert await TransitionEvent.objects.filter(object_type="timed.timedsession", action="end").acount() == 1
    # One running session per owner object; a new one after the end is fine.
    second = await sync_to_async(services.session_start)(KIND, "v1", 60)
    with pytest.raises(TimedError) as twice:
        await sync_to_async(services.session_start)(KIND, "v1", 60)
    assert twice.value.code == "timed.already_running"
    assert second.status == TimedSession.Status.RUNNING


async def test_the_sweep_ends_overdue_sessions_the_clock_missed(owner: Calls) -> None:
    session, _doctor, _patient, _conv = await visit(duration=1)
    past = session.deadline + dt.timedelta(seconds=30)
    assert await sync_to_async(services.sessions_end_overdue)(past) == 0  # not overdue by the real clock yet
    await TimedSession.objects.filter(pk=session.pk).aupdate(deadline=session.deadline - dt.timedelta(seconds=30))
    assert await sync_to_async(services.sessions_end_overdue)() == 1
    assert owner.ended == [(session.pk, "deadline")]


async def test_bad_input_is_refused_before_anything_is_written(owner: Calls) -> None:
    for kwargs, code in (
        ({"duration_seconds": 0}, "timed.invalid_duration"),
        ({"duration_seconds": 60, "extension_seconds": -1}, "timed.invalid_duration"),
        ({"duration_seconds": 60, "topics": ["no topic"]}, "timed.invalid_topic"),
    ):
        with pytest.raises(TimedError) as refused:
            await sync_to_async(services.session_start)(KIND, "bad", **kwargs)
        assert refused.value.code == code
    with pytest.raises(TimedError) as unknown:
        await sync_to_async(services.session_start)("nobody", "x", 60)
    assert unknown.value.code == "timed.owner_unknown"
    assert await TimedSession.objects.acount() == 0


async def test_one_leader_among_web_processes_and_racing_clocks_warn_once(owner: Calls) -> None:
    import redis.asyncio as aioredis
    from django.conf import settings

    from apps.timed.clock import LEADER_KEY

    await aioredis.Redis.from_url(settings.REDIS_URL).delete(LEADER_KEY)
    a, b = Clock(), Clock()
    assert await a.lead() is True
    assert await b.lead() is False
    assert await a.lead() is True  # renewed
    await a.stop()  # a leader that stops hands over at once (a killed one after TIMED_LEADER_TTL_MS)
    assert await b.lead() is True
    await b.stop()
    # Two clocks stepping the same second (two processes, a lost lease) send each warning once.
    session, _doctor, _patient, _conv = await visit(duration=600)
    deadline = ts(session.deadline)
    first, second = await asyncio.gather(Clock().step(deadline - 250), Clock().step(deadline - 250))
    assert sorted(first.warnings + second.warnings) == [(session.pk, 5)]
    ended = await asyncio.gather(Clock().step(deadline + 1), Clock().step(deadline + 1))
    assert sorted(ended[0].ended + ended[1].ended) == [session.pk]
    assert owner.ended == [(session.pk, "deadline")]

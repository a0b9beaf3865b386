"""A failing owner hook never holds up the hard stop: the session, its conversation and its
room end; the owner's error is logged (and its own writes rolled back)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from apps.accounts.roles import Role
from apps.im.models import Conversation
from apps.im.services import conversation_for_pair
from apps.timed import registry, services
from apps.timed.clock import Clock
from apps.timed.models import TimedSession
from tests.conftest import make_patient, make_staff

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def no_logged_exceptions() -> Iterator[None]:
    """This module expects one logged error (the owner's); it checks it itself."""
    yield


@pytest.fixture
def failing_owner() -> Iterator[list[str]]:
    calls: list[str] = []

    def on_end(session: Any, reason: str) -> None:
        calls.append(reason)
        Conversation.objects.filter(pk=session.conversation_id).update(title="owner wrote this")
        raise RuntimeError("owner bug")

    registry.register_owner("failing", on_end=on_end)
    yield calls
    registry.unregister_owner("failing")


async def test_a_failing_on_end_is_logged_and_the_session_still_ends(failing_owner: list[str]) -> None:
    @sync_to_async
    def setup() -> tuple[TimedSession, int]:
        doctor = make_staff(Role.DOCTOR, "faildoc")
        patient = make_patient("13900000888", "失败患者")
        conv = conversation_for_pair(staff=doctor.user, patient=patient.user)
        return services.session_start("failing", "f1", 60, conversation_id=conv.pk), conv.pk

    session, conv_id = await setup()
    handler = Records()
    logging.getLogger("apps.timed").addHandler(handler)
    try:
        result = await Clock().step(session.deadline.timestamp() + 0.1)
    finally:
        logging.getLogger("apps.timed").removeHandler(handler)
    assert result.ended == [session.pk] and failing_owner == ["deadline"]
    row = await TimedSession.objects.aget(pk=session.pk)
    assert row.status == TimedSession.Status.ENDED and row.end_reason == "deadline"
    conv = await Conversation.objects.aget(pk=conv_id)
    assert conv.closed_at is not None and conv.title != "owner wrote this"  # the hook's write rolled back
    assert [r.getMessage() for r in handler.records] == ["timed: on_end of failing f1 failed; the session ends anyway"]

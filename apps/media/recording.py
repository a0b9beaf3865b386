"""Recording control of a consultation room, shared by REST and the hub socket.

``/api/v1/media/rooms/{room}/recording/start|stop`` and the socket frames
``media.record_start`` / ``media.record_stop`` decide here: only clinical
staff of the conversation behind ``conv-<id>`` control recording, and a room
is recorded only while every patient of the conversation has a current
``recording`` consent (``apps.accounts`` consent records, the latest per
purpose in force). Without it the start is refused with
``media.recording_consent_missing`` before anything is written (no row, no
event, no node command). A patient who withdraws that consent stops, at once,
every running recording of a room they take part in
(:func:`on_consent_changed`, subscribed to ``apps.accounts.signals.consent_changed``
in ``MediaConfig.ready()``), through the same stop path, with the reason
``consent_withdrawn`` on the transition and in the audit record; the room's
conversation topic gets ``media.recording_stopped``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync

from apps.accounts.models import ConsentRecord, User
from apps.accounts.roles import CLINICAL_ROLES
from apps.accounts.selectors import has_consent
from apps.audit.services import audit_record
from apps.im.models import Member
from apps.im.services import topic_for
from hub.errors import Forbidden, NotFound
from hub.realtime.db import run_db
from hub.realtime.sessions import publish_on_commit
from recordings.models import Recording
from recordings.services import recording_discard

from .access import room_member
from .control import UNREACHABLE, send_command, start_recording, stop_recording
from .errors import MediaCode, MediaError

log = logging.getLogger(__name__)

CONSENT_PURPOSE = ConsentRecord.Purpose.RECORDING.value
CONSENT_WITHDRAWN = "consent_withdrawn"
STOPPED_EVENT = "media.recording_stopped"


@dataclass(frozen=True)
class StartPlan:
    """What a start needs once it has been allowed: who asked, the staff taking part."""

    member: Member
    staff: list[User]


def recording_state(recording: Recording) -> dict[str, Any]:
    return {
        "public_id": str(recording.public_id),
        "room_id": recording.room_id,
        "status": recording.status,
        "duration_seconds": recording.duration_seconds,
    }


def staff_member(user: Any, room_id: str) -> Member:
    """The user's membership of the room's conversation, if they may control recording."""
    member = room_member(user, room_id)
    if member.role != Member.Role.STAFF or member.user.role not in CLINICAL_ROLES:
        raise Forbidden("仅参与问诊的医护人员可以控制录制")
    return member


def _active_members(conversation_id: int) -> list[Member]:
    return list(Member.objects.filter(conversation_id=conversation_id, left_at__isnull=True).select_related("user"))


def patients_without_consent(conversation_id: int) -> list[User]:
    """The conversation's patients whose latest ``recording`` consent is not a grant."""
    return [
        m.user
        for m in _active_members(conversation_id)
        if m.role == Member.Role.PATIENT and not has_consent(m.user, CONSENT_PURPOSE)
    ]


def require_consent(conversation_id: int) -> None:
    missing = patients_without_consent(conversation_id)
    if missing:
        raise MediaError(MediaCode.RECORDING_CONSENT_MISSING, patients=[u.pk for u in missing])


def plan_start(user: Any, room_id: str) -> StartPlan:
    """Every check of a start, before anything is written; refusals raise."""
    member = staff_member(user, room_id)
    if Recording.objects.filter(room_id=room_id, status=Recording.Status.RECORDING).exists():
        raise MediaError(MediaCode.ALREADY_RECORDING)
    require_consent(member.conversation_id)
    staff = [m.user for m in _active_members(member.conversation_id) if m.user.role in CLINICAL_ROLES]
    return StartPlan(member=member, staff=staff)


def started(plan: StartPlan, recording: Recording) -> list[User]:
    """Audit the start; return the patients whose consent is missing now (a withdrawal
    that raced the start: the caller stops the recording and refuses)."""
    audit_record(
        action="recording.start", actor=plan.member.user, object_type="recording", object_id=recording.public_id
    )
    return patients_without_consent(plan.member.conversation_id)


def still_running(recording: Recording) -> Recording | None:
    return Recording.objects.filter(pk=recording.pk, status=Recording.Status.RECORDING).first()


def stopped_for_consent(recording: Recording, patient: User) -> None:
    """Audit and tell the conversation: ``recording`` was stopped because ``patient``'s consent is gone."""
    audit_record(
        action="recording.stop",
        actor=patient,
        object_type="recording",
        object_id=recording.public_id,
        detail={"reason": CONSENT_WITHDRAWN, "room": recording.room_id},
    )
    conversation_id = int(recording.room_id.removeprefix("conv-"))
    publish_on_commit(
        topic_for(conversation_id), STOPPED_EVENT, {**recording_state(recording), "reason": CONSENT_WITHDRAWN}
    )


async def stop_raced_start(recording: Recording, missing: list[User]) -> MediaError:
    """The consent went while the node started: stop at once; the start is refused."""
    row = await run_db(still_running, recording)
    if row is not None:
        row = await stop_recording(row, reason=CONSENT_WITHDRAWN)
        await run_db(stopped_for_consent, row, missing[0])
    elif not await Recording.objects.filter(pk=recording.pk).aexists():
        # The withdrawal dropped the row before the node began writing: stop the node too.
        try:
            await send_command(recording.node, "record.stop", recording.room_id)
        except UNREACHABLE as exc:
            log.warning("media node %s not told to stop %s: %r", recording.node, recording.public_id, exc)
    # The start is refused: nothing it wrote may stay (every second of it followed the withdrawal).
    await run_db(recording_discard, room_id=recording.room_id, public_id=recording.public_id, reason=CONSENT_WITHDRAWN)
    return MediaError(MediaCode.RECORDING_CONSENT_MISSING, patients=[u.pk for u in missing])


def running(user: Any, room_id: str) -> tuple[Member, Recording]:
    member = staff_member(user, room_id)
    recording = Recording.objects.filter(room_id=room_id, status=Recording.Status.RECORDING).first()
    if recording is None:
        raise NotFound("进行中的录制")
    return member, recording


def stopped(member: Member, recording: Recording) -> dict[str, Any]:
    audit_record(action="recording.stop", actor=member.user, object_type="recording", object_id=recording.public_id)
    return recording_state(recording)


def recording_start_sync(user: Any, room_id: str) -> dict[str, Any]:
    """REST (a sync view): check, start on the node, audit."""
    plan = plan_start(user, room_id)
    recording = async_to_sync(start_recording)(room_id=room_id, participants=plan.staff)
    missing = started(plan, recording)
    if missing:
        raise async_to_sync(stop_raced_start)(recording, missing)
    return recording_state(recording)


def recording_stop_sync(user: Any, room_id: str) -> dict[str, Any]:
    member, recording = running(user, room_id)
    recording = async_to_sync(stop_recording)(recording)
    return stopped(member, recording)


# --- consent withdrawn mid-session ------------------------------------------------------


def _rooms_of_patient(user: User) -> list[str]:
    ids = Member.objects.filter(user=user, role=Member.Role.PATIENT, left_at__isnull=True).values_list(
        "conversation_id", flat=True
    )
    return [f"conv-{pk}" for pk in ids]


def stop_for_withdrawn_consent(user: User) -> list[Recording]:
    """Stop every running recording of a room ``user`` takes part in as a patient."""
    rooms = _rooms_of_patient(user)
    done = []
    for recording in Recording.objects.filter(room_id__in=rooms, status=Recording.Status.RECORDING):
        try:
            recording = async_to_sync(stop_recording)(recording, reason=CONSENT_WITHDRAWN)
        except (MediaError, *UNREACHABLE) as exc:
            # The consent stands; the node is told again by the heartbeat / next stop.
            log.warning("recording %s not stopped after consent withdrawal: %r", recording.public_id, exc)
            continue
        stopped_for_consent(recording, user)
        done.append(recording)
    return done


def on_consent_changed(sender: Any, *, user: User, purpose: str, granted: bool, **_: Any) -> None:
    if purpose == CONSENT_PURPOSE and not granted:
        stop_for_withdrawn_consent(user)

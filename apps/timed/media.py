"""Closing an ended session's media: its recording sealed, then its room closed on its node.

Exactly one process does it at a time: it claims the row (``media_claimed_at``,
a conditional UPDATE; a claim older than :data:`CLAIM_SECONDS` is taken over,
its process died). A node that refuses or cannot be reached releases the
claim and the web clock tries again (``media_closed_at`` stays empty until it
worked)."""

from __future__ import annotations

import datetime as dt
import logging

from django.db.models import Q
from django.utils import timezone

from apps.audit.services import audit_record
from apps.media.control import UNREACHABLE, room_node, send_command, stop_recording
from apps.media.errors import MediaCode, MediaError
from hub.realtime.db import run_db
from recordings.models import Recording

from .models import TimedSession

log = logging.getLogger(__name__)

CLAIM_SECONDS = 60
SESSION_ENDED = "session_ended"  # the reason kept on the recording's finish transition


def _claim(session_id: int) -> str | None:
    now = timezone.now()
    claimed = (
        TimedSession.objects.filter(pk=session_id, status=TimedSession.Status.ENDED, media_closed_at__isnull=True)
        .filter(Q(media_claimed_at__isnull=True) | Q(media_claimed_at__lt=now - dt.timedelta(seconds=CLAIM_SECONDS)))
        .update(media_claimed_at=now)
    )
    if not claimed:
        return None
    room: str = TimedSession.objects.values_list("room_id", flat=True).get(pk=session_id)
    return room


def _release(session_id: int) -> None:
    TimedSession.objects.filter(pk=session_id, media_closed_at__isnull=True).update(media_claimed_at=None)


def _closed(session_id: int) -> None:
    TimedSession.objects.filter(pk=session_id).update(media_closed_at=timezone.now())


def _running_recordings(room_id: str) -> list[Recording]:
    return list(Recording.objects.filter(room_id=room_id, status=Recording.Status.RECORDING))


def _audit_stop(recording: Recording) -> None:
    audit_record(
        action="recording.stop",
        actor_username="system",
        object_type="recording",
        object_id=recording.public_id,
        detail={"reason": SESSION_ENDED, "room": recording.room_id},
    )


async def close_session_media(session_id: int) -> bool:
    """Seal the room's running recording and close the room; ``True`` once done (here or before)."""
    room_id = await run_db(_claim, session_id)
    if room_id is None:
        return False
    if not room_id:
        await run_db(_closed, session_id)
        return True
    try:
        for recording in await run_db(_running_recordings, room_id):
            try:
                sealed = await stop_recording(recording, reason=SESSION_ENDED)
            except MediaError as exc:
                if exc.code != MediaCode.RECORDING_EMPTY:
                    raise
                continue  # nothing reached the recorder: no file, the row is gone
            await run_db(_audit_stop, sealed)
        result = await send_command(room_node(room_id), "room.close", room_id)
        if not result.get("ok"):
            raise MediaError.from_node(result)
    except (*UNREACHABLE, MediaError) as exc:
        log.warning("timed: media of session %s (%s) not closed yet: %r", session_id, room_id, exc)
        await run_db(_release, session_id)
        return False
    await run_db(_closed, session_id)
    log.info("timed: session %s ended; room %s closed", session_id, room_id)
    return True


def media_pending(limit: int = 200) -> list[int]:
    """Ended sessions whose media is not closed yet (the web clock closes them)."""
    return list(
        TimedSession.objects.filter(status=TimedSession.Status.ENDED, media_closed_at__isnull=True)
        .order_by("ended_at")
        .values_list("pk", flat=True)[:limit]
    )

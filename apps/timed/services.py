"""Writes of timed sessions: start, extend once, end (idempotent).

Every end, whoever causes it (the web clock at the deadline, the huey task at
the deadline, the per-minute sweep, the clinician, a termination), goes through
:func:`session_end`: under the row's lock an ended session is left alone, so
the racing enforcers end it exactly once. In the end's transaction the owner's
``on_end`` runs and the IM conversation is closed for new messages; after
commit ``timed.ended`` goes to the session's topics and the media room is
closed (recording sealed) by :func:`request_media_close`
(docs/adr/0045-timed-sessions.md)."""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core.lifecycle import AuditEntry, Publication, transition
from apps.im.services import conversation_close
from hub.errors import NotFound

from .errors import TimedCode, TimedError
from .models import TimedSession
from .registry import owner
from .states import TIMED_TRANSITIONS

log = logging.getLogger(__name__)

S = TimedSession.Status
R = TimedSession.EndReason
MAX_DURATION_SECONDS = 24 * 3600
TOPIC = re.compile(r"^[a-z_]{1,32}:[A-Za-z0-9_.-]{1,64}$")
VERSION_KEY = "timed:running:version"  # changes whenever the running set or a deadline changes

# Registered by the app (apps.py): queue the huey task that ends the session at ``deadline``.
_deadline_scheduler: Callable[[int, dt.datetime], None] | None = None
# Registered by the clock (clock.py): close a session's media on the loop of this process's clock.
_media_closer: Callable[[int], bool] | None = None


def set_deadline_scheduler(fn: Callable[[int, dt.datetime], None] | None) -> None:
    global _deadline_scheduler
    _deadline_scheduler = fn


def set_media_closer(fn: Callable[[int], bool] | None) -> None:
    global _media_closer
    _media_closer = fn


def _now() -> dt.datetime:
    return timezone.now()


def running_changed() -> None:
    """Tell the web clocks (every process) to reload their cached running set."""
    try:
        cache.set(VERSION_KEY, time.time_ns(), None)
    except Exception as exc:  # the periodic reload still picks the change up
        log.warning("timed: running-set version not bumped: %r", exc)


def _schedule_deadline(session: TimedSession) -> None:
    if _deadline_scheduler is None:
        return
    session_id, deadline = session.pk, session.deadline

    def schedule() -> None:
        try:
            assert _deadline_scheduler is not None
            _deadline_scheduler(session_id, deadline)
        except Exception as exc:  # the clock and the sweep still end it
            log.warning("timed: deadline task for session %s not queued: %r", session_id, exc)

    transaction.on_commit(schedule)


def _event(session: TimedSession, event: str, data: dict[str, Any]) -> list[Publication]:
    return [(topic, event, {"session_id": session.pk, **data}) for topic in session.topics]


def _clean_topics(topics: Iterable[str]) -> list[str]:
    result = []
    for topic in topics:
        if not isinstance(topic, str) or not TOPIC.match(topic):
            raise TimedError(TimedCode.INVALID_TOPIC, topic=str(topic)[:80])
        if topic not in result:
            result.append(topic)
    return result


def session_start(
    owner_kind: str,
    owner_id: str,
    duration_seconds: int,
    extension_seconds: int = 0,
    room_id: str = "",
    conversation_id: int | None = None,
    topics: Iterable[str] = (),
    actor: Any = None,
) -> TimedSession:
    """Open a running session whose deadline is ``duration_seconds`` from now.

    One running session per owner object (``timed.already_running``). The huey
    task at the deadline is queued after commit; the web clock picks the
    session up on its next tick."""
    owner(owner_kind)  # a kind nobody registered is a programming error, refused before writing
    if not 0 < int(duration_seconds) <= MAX_DURATION_SECONDS:
        raise TimedError(TimedCode.INVALID_DURATION, field="duration_seconds", max=MAX_DURATION_SECONDS)
    if not 0 <= int(extension_seconds) <= MAX_DURATION_SECONDS:
        raise TimedError(TimedCode.INVALID_DURATION, field="extension_seconds", max=MAX_DURATION_SECONDS)
    clean = _clean_topics(topics)
    now = _now()
    try:
        with transaction.atomic():
            session = TimedSession.objects.create(
                owner_kind=owner_kind,
                owner_id=str(owner_id),
                room_id=room_id or "",
                conversation_id=conversation_id,
                duration_seconds=int(duration_seconds),
                extension_seconds=int(extension_seconds),
                started_at=now,
                deadline=now + dt.timedelta(seconds=int(duration_seconds)),
                topics=clean,
            )
            _schedule_deadline(session)
            transaction.on_commit(running_changed)
    except IntegrityError:
        raise TimedError(TimedCode.ALREADY_RUNNING) from None
    return session


def _refused(status: str, action: str) -> Exception:
    return TimedError(TimedCode.TRANSITION_REFUSED, status=status, action=action)


def session_extend(session_id: int, actor: Any) -> TimedSession:
    """Move the deadline by the session's ``extension_seconds``, once.

    The owner's ``on_extend(session, actor)`` runs in this transaction (billing);
    if it raises, nothing is written. A second extension is refused with
    ``timed.already_extended``, one the product does not offer with
    ``timed.extension_not_allowed``, an ended session with ``timed.transition_refused``."""
    with transaction.atomic():
        session = TimedSession.objects.select_for_update().filter(pk=session_id).first()
        if session is None:
            raise NotFound("限时会话")
        if session.status != S.RUNNING:
            raise _refused(session.status, "extend")
        if session.extension_seconds <= 0:
            raise TimedError(TimedCode.EXTENSION_NOT_ALLOWED)
        if session.extended_at is not None:
            raise TimedError(TimedCode.ALREADY_EXTENDED)
        now = _now()
        if session.deadline <= now:
            # Past the deadline the session is over whatever the enforcers have done yet.
            raise _refused(session.status, "extend")
        session.deadline = session.deadline + dt.timedelta(seconds=session.extension_seconds)
        session.extended_at = now
        session.extended_by = actor
        fields = ["deadline", "extended_at", "extended_by"]
        # The warnings belong to a deadline: one the extension moved out of reach is given again.
        remaining = (session.deadline - now).total_seconds()
        if session.warned_5_at is not None and remaining > 300:
            session.warned_5_at = None
            fields.append("warned_5_at")
        if session.warned_1_at is not None and remaining > 60:
            session.warned_1_at = None
            fields.append("warned_1_at")
        hook = owner(session.owner_kind).on_extend
        if hook is not None:
            hook(session, actor)
        transition(
            session,
            "extend",
            table=TIMED_TRANSITIONS,
            actor=actor,
            code=TimedCode.TRANSITION_REFUSED,
            fields=fields,
            refused=_refused,
            audit=AuditEntry(
                action="timed.extend",
                object_type="timed_session",
                object_id=session.pk,
                detail={"owner": session.owner_kind, "extension_seconds": session.extension_seconds},
            ),
            publish=lambda s: _event(s, "timed.extended", {"deadline": s.deadline.isoformat()}),
        )
        _schedule_deadline(session)
        transaction.on_commit(running_changed)
    return session


def session_end(session_id: int, reason: str, actor: Any = None, *, now: dt.datetime | None = None) -> TimedSession:
    """End the session (idempotent: an ended session is returned unchanged).

    ``reason`` is ``deadline`` (the enforcers: a session whose deadline has not
    passed yet, e.g. because it was extended, is left running), ``ended`` (the
    clinician) or ``terminated``."""
    return session_end_changed(session_id, reason, actor, now=now)[0]


def session_end_changed(
    session_id: int, reason: str, actor: Any = None, *, now: dt.datetime | None = None
) -> tuple[TimedSession, bool]:
    """:func:`session_end`, and whether this call ended it (``False``: already ended, or not due)."""
    if reason not in R.values:
        raise ValueError(f"unknown end reason {reason!r}")
    with transaction.atomic():
        session = TimedSession.objects.select_for_update().filter(pk=session_id).first()
        if session is None:
            raise NotFound("限时会话")
        if session.status == S.ENDED:
            return session, False
        at = now or _now()
        if reason == R.DEADLINE and session.deadline > at:
            return session, False
        session.ended_at = at
        session.end_reason = reason
        fields = ["ended_at", "end_reason"]
        if not session.room_id:
            session.media_closed_at = at  # nothing to close
            fields.append("media_closed_at")
        transition(
            session,
            "end",
            table=TIMED_TRANSITIONS,
            actor=actor,
            code=TimedCode.TRANSITION_REFUSED,
            reason=reason,
            fields=fields,
            refused=_refused,
            audit=AuditEntry(
                action="timed.end",
                object_type="timed_session",
                object_id=session.pk,
                detail={"owner": session.owner_kind, "reason": reason},
                actor_username="" if actor is not None else "system",
            ),
            publish=lambda s: _event(s, "timed.ended", {"reason": reason}),
        )
        hook = _on_end_hook(session.owner_kind)
        if hook is not None:
            try:
                # A savepoint: a failing owner hook is rolled back alone and logged; the hard
                # stop (the session, the conversation, the room) never waits for the owner.
                with transaction.atomic():
                    hook(session, reason)
            except Exception:
                log.exception(
                    "timed: on_end of %s %s failed; the session ends anyway", session.owner_kind, session.owner_id
                )
        if session.conversation_id is not None:
            conversation_close(conversation_id=session.conversation_id, actor=actor, reason=reason)
        transaction.on_commit(running_changed)
        if session.room_id:
            transaction.on_commit(lambda: request_media_close(session.pk))
    return session, True


def _on_end_hook(kind: str) -> Any:
    """The owner's ``on_end``; an owner not registered in this process (a process that
    does not load it, e.g. a bench) never holds up the hard stop."""
    try:
        return owner(kind).on_end
    except TimedError:
        log.warning("timed: no owner %r registered in this process; the session ends without its hook", kind)
        return None


def request_media_close(session_id: int) -> bool:
    """After an end: close the room and seal its recording where this process can.

    A process running the web clock does it on the clock's loop (the embedded
    media node lives there). Elsewhere (the worker) it is done here only when
    the room's node is reached over the channel layer; in the embedded default
    the worker cannot reach the node in the web process, so the web clock closes
    the media of ended sessions whose ``media_closed_at`` is still empty."""
    if _media_closer is not None and _media_closer(session_id):
        return True
    from django.conf import settings

    if settings.MEDIA_EMBEDDED:
        return False
    import asyncio
    import threading

    from .media import close_session_media

    def run() -> None:
        try:
            asyncio.run(close_session_media(session_id))
        except Exception:
            log.warning("timed: media of session %s not closed here; the web clock retries", session_id, exc_info=True)

    threading.Thread(target=run, name=f"timed-media-{session_id}", daemon=True).start()
    return True


def sessions_end_overdue(now: dt.datetime | None = None, limit: int = 500) -> int:
    """The sweep: end every running session whose deadline has passed; returns how many."""
    at = now or _now()
    ids = list(
        TimedSession.objects.filter(status=S.RUNNING, deadline__lte=at)
        .order_by("deadline")
        .values_list("pk", flat=True)[:limit]
    )
    ended = 0
    for session_id in ids:
        try:
            ended += int(session_end_changed(session_id, R.DEADLINE)[1])
        except Exception:
            log.exception("timed: overdue session %s not ended", session_id)
    return ended


def session_end_if_due(session_id: int) -> str:
    """The huey task at the deadline: end it if due; a session whose deadline has not come
    (an early run, an extension) is left for the task its deadline has."""
    session = TimedSession.objects.filter(pk=session_id).first()
    if session is None:
        return "missing"
    if session.status == S.ENDED:
        return "ended_before"
    session, changed = session_end_changed(session_id, R.DEADLINE)
    if changed:
        return "ended"
    if session.status == S.ENDED:
        return "ended_before"
    if _deadline_scheduler is not None:
        _deadline_scheduler(session.pk, session.deadline)
    return "not_due"

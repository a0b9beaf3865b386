"""The web process's clock: 1 Hz countdown ticks, the 5- and 1-minute warnings, the
hard stop at the deadline, and closing the media of ended sessions.

One asyncio task per web process, started with the server (``hub/asgi.py``,
like the embedded media node), wakes on every wall-clock second. Only the
leader works: with ``REDIS_URL`` the process holding the Redis key
``timed:clock:leader`` (``SET NX PX``, renewed each second, taken over within
``TIMED_LEADER_TTL_MS`` of a leader's death); without Redis the one web process.

Each step (:meth:`Clock.step`):

1. the running set is cached in memory and reloaded when the version key
   (``services.VERSION_KEY``, bumped on every start, extension and end) moves,
   and every ``TIMED_RELOAD_SECONDS`` regardless (a change made where the cache
   is process-local);
2. ``timed.tick`` goes to each running session's topics;
3. a warning due (<= 300 s, <= 60 s left) is claimed by one conditional UPDATE
   per warning (``... WHERE warned_x_at IS NULL``) and sent only by the claimer,
   so it goes out once across processes and restarts;
4. sessions past their deadline are ended (``services.session_end``); in real
   time each deadline due before the next tick also gets a precise
   ``loop.call_later`` timer, so the stop lands at the deadline, not at the next
   whole second;
5. the media of ended sessions not closed yet (ended by the worker, which in the
   embedded default cannot reach the media node in this process, or a node
   that did not answer) is closed every ``TIMED_MEDIA_RETRY_SECONDS``.

The huey task at each deadline and the per-minute sweep (``tasks.py``) end
the sessions when no web process runs; ending is idempotent under the row lock.

Tests drive :meth:`Clock.step` with an injected ``now`` (time travel)."""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import logging
import math
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from hub.errors import NotFound
from hub.realtime.db import run_db
from hub.realtime.node import node
from hub.realtime.sessions import event_frame

from . import services
from .media import close_session_media, media_pending
from .models import TimedSession

log = logging.getLogger(__name__)

LEADER_KEY = "timed:clock:leader"
# Renew our lease, or take it when it is free: 1 = we lead.
LEAD_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('pexpire', KEYS[1], ARGV[2])
  return 1
end
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""
PRECISE_WINDOW = 1.5  # seconds: deadlines this close get their own timer


@dataclass
class Running:
    id: int
    deadline: float  # epoch seconds
    deadline_iso: str
    topics: list[str]
    warned_5: bool
    warned_1: bool


@dataclass
class StepResult:
    ticks: int = 0
    warnings: list[tuple[int, int]] = field(default_factory=list)  # (session id, minutes left)
    ended: list[int] = field(default_factory=list)
    media_closed: list[int] = field(default_factory=list)


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()


def _load(seen: Any, force: bool) -> tuple[Any, list[tuple[Any, ...]] | None]:
    try:
        version = cache.get(services.VERSION_KEY)
    except Exception:
        version, force = None, True
    if not force and version is not None and version == seen:
        return version, None
    rows = list(
        TimedSession.objects.filter(status=TimedSession.Status.RUNNING).values_list(
            "pk", "deadline", "topics", "warned_5_at", "warned_1_at"
        )
    )
    return version, rows


def claim_warnings(due: list[tuple[int, int]], at: dt.datetime) -> list[tuple[int, int]]:
    """Mark the due warnings sent, each once: returns the (session, minutes) this call
    claimed. One conditional UPDATE per threshold (``... WHERE warned_x_at IS NULL
    RETURNING id``): a concurrent clock or a restarted one claims none of them again."""
    claimed: list[tuple[int, int]] = []
    table = TimedSession._meta.db_table
    for minutes, column in ((5, "warned_5_at"), (1, "warned_1_at")):
        ids = [session_id for session_id, m in due if m == minutes]
        if not ids:
            continue
        marks = ", ".join(["%s"] * len(ids))
        sql = (
            f"UPDATE {table} SET {column} = %s"  # noqa: S608 (names are ours, values are parameters)
            f" WHERE id IN ({marks}) AND status = %s AND {column} IS NULL RETURNING id"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [at, *ids, TimedSession.Status.RUNNING])
            claimed.extend((int(row[0]), minutes) for row in cursor.fetchall())
    return sorted(claimed)


class Clock:
    def __init__(self) -> None:
        self.node_id = uuid.uuid4().hex
        self.sessions: dict[int, Running] = {}
        self.version: Any = None
        self.loaded_at = -math.inf  # monotonic
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[None] | None = None
        self.leader = not settings.REDIS_URL
        self.timers: dict[int, asyncio.TimerHandle] = {}
        self.ending: set[int] = set()
        self.media_inflight: set[int] = set()
        self.media_checked_at = -math.inf  # monotonic
        self._tasks: set[asyncio.Task[Any]] = set()
        self._redis: Any = None
        self._stopping = False

    # --- this process's clock ------------------------------------------------------

    def install(self) -> Clock:
        """Make this the process's clock (ends elsewhere in the process close media through it)."""
        global _clock
        self.loop = asyncio.get_running_loop()
        _clock = self
        services.set_media_closer(self.close_media_threadsafe)
        return self

    def uninstall(self) -> None:
        global _clock
        if _clock is self:
            _clock = None
            services.set_media_closer(None)
        for handle in self.timers.values():
            handle.cancel()
        self.timers.clear()

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro, context=contextvars.Context())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for the ends and media closes started so far (tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # --- the loop --------------------------------------------------------------------

    async def run(self) -> None:
        """Wake on every wall-clock second until stopped."""
        while not self._stopping:
            await asyncio.sleep(max(0.0, math.floor(time.time()) + 1 - time.time()))
            try:
                self.leader = await self.lead()
                if self.leader:
                    await self.step()
                    self.arm_timers(time.time())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("timed clock step failed")

    async def stop(self) -> None:
        self._stopping = True
        if self.task is not None:
            self.task.cancel()
        self.uninstall()
        if self._redis is not None:
            try:
                await self._redis.eval(
                    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0",
                    1,
                    LEADER_KEY,
                    self.node_id,
                )
                await self._redis.aclose()
            except Exception:  # noqa: S110 (the lease expires on its own)
                pass

    async def lead(self) -> bool:
        if not settings.REDIS_URL:
            return True
        if self._redis is None:
            import redis.asyncio as aioredis

            self._redis = aioredis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
        try:
            return bool(await self._redis.eval(LEAD_SCRIPT, 1, LEADER_KEY, self.node_id, settings.TIMED_LEADER_TTL_MS))
        except Exception as exc:
            # Redis away: keep what we were (two leaders only repeat idempotent work).
            log.warning("timed clock: leader lease not renewed: %r", exc)
            return self.leader

    # --- one step -------------------------------------------------------------------

    async def refresh(self, force: bool = False) -> None:
        stale = time.monotonic() - self.loaded_at >= settings.TIMED_RELOAD_SECONDS
        version, rows = await run_db(_load, self.version, force or stale)
        self.version = version
        if rows is None:
            return
        self.loaded_at = time.monotonic()
        fresh: dict[int, Running] = {}
        for pk, deadline, topics, warned_5, warned_1 in rows:
            ts = deadline.timestamp()
            fresh[pk] = Running(
                pk, ts, deadline.isoformat(), list(topics or []), warned_5 is not None, warned_1 is not None
            )
            old = self.sessions.get(pk)
            if old is not None and old.deadline != ts and pk in self.timers:
                self.timers.pop(pk).cancel()  # extended: its timer is for the old deadline
        for pk in set(self.timers) - set(fresh):
            self.timers.pop(pk).cancel()
        self.sessions = fresh

    async def step(self, now: float | None = None) -> StepResult:
        """One second of the clock. ``now`` (epoch seconds) travels in time: ends and
        warnings are then stamped with it; without it the wall clock is used."""
        real = now is None
        at = None if real else dt.datetime.fromtimestamp(now or 0.0, dt.UTC)
        await self.refresh()
        now = time.time() if real else float(now or 0.0)
        result = StepResult()
        hub = node()
        server_now = _iso(now)
        due: list[int] = []
        warn: list[tuple[int, int]] = []
        for s in list(self.sessions.values()):
            remaining = s.deadline - now
            if remaining <= 0:
                due.append(s.id)
                continue
            if remaining <= 60:
                if not s.warned_1:
                    warn.append((s.id, 1))
            elif remaining <= 300 and not s.warned_5:
                warn.append((s.id, 5))
            data = {
                "session_id": s.id,
                "remaining_seconds": math.ceil(remaining),
                "deadline": s.deadline_iso,
                "server_now": server_now,
            }
            for topic in s.topics:
                await hub.publish(topic, event_frame(topic, "timed.tick", data))
            result.ticks += 1
        if warn:
            claimed = await run_db(claim_warnings, warn, at or timezone.now())
            for session_id, minutes in claimed:
                running = self.sessions.get(session_id)
                if running is None:
                    continue
                if minutes == 5:
                    running.warned_5 = True
                else:
                    running.warned_1 = running.warned_5 = True
                for topic in running.topics:
                    payload = {"session_id": session_id, "minutes_left": minutes}
                    await hub.publish(topic, event_frame(topic, "timed.warning", payload))
            result.warnings = claimed
        if due:
            ends = await asyncio.gather(*(self.end(session_id, at) for session_id in due))
            result.ended = [session_id for session_id, ended in zip(due, ends, strict=True) if ended]
        if time.monotonic() - self.media_checked_at >= settings.TIMED_MEDIA_RETRY_SECONDS or not real:
            self.media_checked_at = time.monotonic()
            result.media_closed = await self.close_pending_media()
        return result

    async def end(self, session_id: int, at: dt.datetime | None = None) -> bool:
        """End a session whose deadline passed (a no-op if another process did)."""
        if session_id in self.ending:
            return False
        self.ending.add(session_id)
        try:
            session, changed = await run_db(
                services.session_end_changed, session_id, TimedSession.EndReason.DEADLINE, None, now=at
            )
        except NotFound:
            self.sessions.pop(session_id, None)
            return False
        except Exception:
            log.exception("timed clock: session %s not ended", session_id)
            return False
        finally:
            self.ending.discard(session_id)
        handle = self.timers.pop(session_id, None)
        if handle is not None:
            handle.cancel()
        if session.status == TimedSession.Status.ENDED:
            self.sessions.pop(session_id, None)
            return changed
        running = self.sessions.get(session_id)
        if running is not None:  # extended meanwhile
            running.deadline = session.deadline.timestamp()
            running.deadline_iso = session.deadline.isoformat()
        return False

    # --- precise stops ----------------------------------------------------------------

    def arm_timers(self, now: float) -> None:
        """Give each deadline due before the next tick (and a half) its own timer."""
        loop = asyncio.get_running_loop()
        for s in self.sessions.values():
            if s.id not in self.timers and s.deadline - now <= PRECISE_WINDOW:
                self.timers[s.id] = loop.call_later(max(0.0, s.deadline - time.time()), self._fire, s.id)

    def _fire(self, session_id: int) -> None:
        self.timers.pop(session_id, None)
        running = self.sessions.get(session_id)
        if running is None:
            return
        early = running.deadline - time.time()
        if early > 0:
            self.timers[session_id] = asyncio.get_running_loop().call_later(early, self._fire, session_id)
            return
        self.spawn(self.end(session_id))

    # --- media --------------------------------------------------------------------------

    def close_media_threadsafe(self, session_id: int) -> bool:
        """From any thread of this process: close the session's media on the clock's loop."""
        loop = self.loop
        if loop is None or loop.is_closed() or not loop.is_running():
            return False
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            self.close_media_soon(session_id)
        else:
            loop.call_soon_threadsafe(self.close_media_soon, session_id)
        return True

    def close_media_soon(self, session_id: int) -> None:
        if session_id not in self.media_inflight:
            self.spawn(self.close_media(session_id))

    async def close_media(self, session_id: int) -> bool:
        if session_id in self.media_inflight:
            return False
        self.media_inflight.add(session_id)
        try:
            return await close_session_media(session_id)
        except Exception:
            log.exception("timed clock: media of session %s not closed", session_id)
            return False
        finally:
            self.media_inflight.discard(session_id)

    async def close_pending_media(self) -> list[int]:
        pending = [pk for pk in await run_db(media_pending) if pk not in self.media_inflight]
        done = await asyncio.gather(*(self.close_media(pk) for pk in pending))
        return [pk for pk, ok in zip(pending, done, strict=True) if ok]


_clock: Clock | None = None


def current() -> Clock | None:
    return _clock


async def start() -> Clock:
    """Start this process's clock on the running loop (once)."""
    if _clock is not None and _clock.loop is asyncio.get_running_loop():
        return _clock
    clock = Clock().install()
    if settings.REDIS_URL:
        # Ticks reach sockets of the other web processes through the hub node's Redis side.
        node()._ensure_started()
    clock.task = asyncio.get_running_loop().create_task(clock.run(), context=contextvars.Context())
    log.info("timed clock started (%s)", "leader election over redis" if settings.REDIS_URL else "single process")
    return clock


def start_with_server(loop: asyncio.AbstractEventLoop) -> None:
    """Schedule :func:`start` on the server's loop (daphne's)."""
    loop.call_soon(lambda: loop.create_task(start(), context=contextvars.Context()))

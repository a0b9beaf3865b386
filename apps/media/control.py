"""Hub side of the media node: commands out, events in, the heartbeat.

Commands go to the node's channel (``media.node.<name>``) with a short-lived
``node`` grant; the node answers on a reply channel. Events come back on
``media.events`` (or the channel the node was started with) and are applied
by ``recordings.services.handle_event``. When a node dies (SIGKILL, lost
host), ``recordings.services.node_lost`` seals its open recordings from the
cut files with the gap noted in the manifest.

A login session that ends (``apps.accounts.signals.sessions_revoked``, sent on
commit of a logout, a revoke-all, an admin revoke, a password change...) is
sent to every media node as ``session.revoke`` (:func:`on_sessions_revoked`):
the node refuses that session's grants until they have all expired and ends
what it opened. A node that does not answer gets a warning and never fails
the logout: the grant TTL bounds what it may still admit.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

from asgiref.sync import sync_to_async
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from django.conf import settings
from redis.exceptions import RedisError

from apps.accounts.models import User
from hub.crypto import grant_key
from media_engine.grants import sign_grant
from media_engine.rtmp import RECONNECT_SECONDS
from recordings.models import Recording
from recordings.services import handle_event, node_lost, recording_recover_or_drop, recording_register

from . import embedded
from .errors import MediaCode, MediaError

log = logging.getLogger(__name__)

EVENTS_CHANNEL = "media.events"


def node_channel(name: str) -> str:
    return f"media.node.{name}"


def room_node(room_id: str) -> str:
    """The node that holds ``room_id``: every protocol (socket, WHIP/WHEP, RTMP, FLV/HLS,
    recording) reaches the room there. One node per deployment today."""
    return str(settings.MEDIA_NODE)


# A node that cannot be reached: no reply in time, the channel layer's Redis down, or
# the node's channel full (it is not reading): each is a 503, never a 500.
UNREACHABLE = (TimeoutError, OSError, RedisError, ChannelFull)


def node_grant(cmd: str, room_id: str, **claims: Any) -> str:
    return sign_grant(
        {"purpose": "node", "cmd": cmd, "room": room_id, **claims},
        key=grant_key(),
        ttl_seconds=settings.MEDIA_GRANT_TTL_SECONDS,
    )


async def send_command(node: str, cmd: str, room_id: str, *, timeout: float = 15.0, **data: Any) -> dict[str, Any]:
    """Send one command to a media node and wait for its reply.

    The embedded node (``MEDIA_EMBEDDED``, this process) gets it by a direct
    call; a remote node over the channel layer. Either way the node checks the
    hub-signed grant.
    """
    claims = {key: data[key] for key in ("peer", "sid", "issued") if key in data}
    message = {"type": "media.command", "cmd": cmd, "room": room_id, "grant": node_grant(cmd, room_id, **claims)}
    if embedded.is_embedded(node):
        try:
            return await asyncio.wait_for(embedded.node().handle({**message, **data}), timeout)
        except UNREACHABLE:
            raise
        except Exception as exc:
            # A remote node that fails a command never answers (a 503 for the client); the
            # embedded one fails the same way rather than as a 500.
            log.exception("embedded media node failed %s %s", cmd, room_id)
            raise MediaError(MediaCode.NODE_UNAVAILABLE) from exc
    layer = get_channel_layer()
    assert layer is not None
    reply = await layer.new_channel("media.reply.")
    await layer.send(node_channel(node), {**message, **data, "reply_to": reply})
    result: dict[str, Any] = await asyncio.wait_for(layer.receive(reply), timeout)
    return result


async def tell_node(node: str, cmd: str, room_id: str, *, timeout: float = 15.0, **data: Any) -> dict[str, Any]:
    """Send one command to a media node without waiting for its answer (a remote node acts
    on it and logs; nobody reads a reply); the embedded node runs it directly. For what a
    hub does on its own initiative (a closed socket, a removed member), where nothing waits
    on the outcome: no reply channel is read, so callers on any event loop or thread may use it."""
    if embedded.is_embedded(node):
        return await send_command(node, cmd, room_id, timeout=timeout, **data)
    claims = {key: data[key] for key in ("peer", "sid", "issued") if key in data}
    message = {"type": "media.command", "cmd": cmd, "room": room_id, "grant": node_grant(cmd, room_id, **claims)}
    layer = get_channel_layer()
    assert layer is not None
    await asyncio.wait_for(layer.send(node_channel(node), {**message, **data}), timeout)
    return {"ok": True, "sent": True}


# How long a revocation waits for each media node to confirm it (then it warns; the logout never waits).
REVOKE_TIMEOUT_SECONDS = 3.0


def media_nodes() -> list[str]:
    """Every media node a login session may have reached (one per deployment today)."""
    return [str(settings.MEDIA_NODE)]


def revoke_until(now: float | None = None) -> float:
    """Until when a node refuses a revoked session's grants: the longest-lived grant issued
    before the logout (room and node grants) has expired by then, and so has the window in
    which an RTMP URL reconnects after its session ended."""
    return (time.time() if now is None else now) + settings.MEDIA_GRANT_TTL_SECONDS + RECONNECT_SECONDS


async def _embedded_revoke(node: str, sid: str, until: float, timeout: float) -> dict[str, Any]:
    return await _embedded_command(node, "session.revoke", "", timeout, sid=sid, until=until)


async def _embedded_command(node: str, cmd: str, room_id: str, timeout: float, **data: Any) -> dict[str, Any]:
    """The embedded node lives on the server's loop: run the command there (a logout or a
    removal from another loop or from no loop at all must not start a second node); none
    yet, nothing to end."""
    loop = embedded.node_loop()
    if loop is None or loop.is_closed() or not loop.is_running():
        return {"ok": True, "ended": 0}
    command = send_command(node, cmd, room_id, timeout=timeout, **data)
    if loop is asyncio.get_running_loop():
        return await command
    future = asyncio.run_coroutine_threadsafe(command, loop)
    return await asyncio.wait_for(asyncio.wrap_future(future), timeout)


async def revoke_sessions(token_ids: Iterable[int], *, timeout: float = REVOKE_TIMEOUT_SECONDS) -> int:
    """Tell every media node that these login sessions ended; returns the media sessions
    ended. A node that refuses or does not answer within ``timeout`` is logged, never raised."""
    sids = sorted({str(int(t)) for t in token_ids})
    if not sids:
        return 0
    until = revoke_until()

    async def one(node: str, sid: str) -> int:
        try:
            if embedded.is_embedded(node):
                result = await _embedded_revoke(node, sid, until, timeout)
            else:
                result = await send_command(node, "session.revoke", "", timeout=timeout, sid=sid, until=until)
        except (*UNREACHABLE, MediaError) as exc:
            log.warning("media node %s not told that login session %s ended: %r", node, sid, exc)
            return 0
        if not result.get("ok"):
            log.warning("media node %s refused the revocation of login session %s: %s", node, sid, result.get("code"))
            return 0
        return int(result.get("ended") or 0)

    ended = await asyncio.gather(*(one(node, sid) for node in media_nodes() for sid in sids))
    return sum(ended)


def _revoke_in_thread(ids: list[int]) -> None:
    try:
        asyncio.run(revoke_sessions(ids))
    except Exception:
        log.warning("media nodes not told that %d login session(s) ended", len(ids), exc_info=True)


def on_sessions_revoked(sender: Any, *, token_ids: Iterable[int], **_: Any) -> None:
    """``apps.accounts.signals.sessions_revoked`` (sent after commit): end the login
    sessions' media on every node. The logout has happened whatever the nodes answer,
    and it never waits for them: the commands go out from a thread of their own (a
    Django sync view runs on the one thread all sync views of the process share, so a
    node that does not answer must not hold it)."""
    ids = [int(t) for t in token_ids]
    if ids:
        threading.Thread(target=_revoke_in_thread, args=(ids,), name="media-session-revoke", daemon=True).start()


# --- a member removed from a conversation loses its video room at once ---------------


def conversation_room(conversation_id: int) -> str:
    """The video room of an IM conversation (``apps.media.access.ROOM``)."""
    return f"conv-{int(conversation_id)}"


async def kick_peer(room_id: str, peer_id: str, *, timeout: float = REVOKE_TIMEOUT_SECONDS) -> int:
    """Tell the room's node that ``peer_id`` left ``room_id`` for good: it ends the peer's
    media there (WebRTC, WHIP/WHEP, RTMP, HTTP-FLV) and refuses the peer's earlier grants
    for the room until they have all expired. Returns the sessions ended (the embedded
    node; a remote one is told without waiting and logs them); a node that refuses or
    cannot be reached is logged, never raised."""
    node = room_node(room_id)
    until = revoke_until()
    try:
        if embedded.is_embedded(node):
            result = await _embedded_command(node, "peer.kick", room_id, timeout, peer=peer_id, until=until)
        else:  # sent, not awaited: the node logs what it ended
            result = await tell_node(node, "peer.kick", room_id, timeout=timeout, peer=peer_id, until=until)
    except (*UNREACHABLE, MediaError) as exc:
        log.warning("media node %s not told that %s left room %s: %r", node, peer_id, room_id, exc)
        return 0
    if not result.get("ok"):
        log.warning("media node %s refused to remove %s from room %s: %s", node, peer_id, room_id, result.get("code"))
        return 0
    return int(result.get("ended") or 0)


def _kick_in_thread(room_id: str, peer_id: str) -> None:
    try:
        asyncio.run(kick_peer(room_id, peer_id))
    except Exception:
        log.warning("media node not told that %s left room %s", peer_id, room_id, exc_info=True)


def on_member_removed(sender: Any, *, conversation_id: int, user_id: int, **_: Any) -> None:
    """``apps.im.signals.member_removed`` (sent after commit): the user's media in the
    conversation's room ends now. New grants are refused already (:mod:`.access` checks
    membership); the node refuses the grants issued before. Like a logout it never waits
    for the node: the command goes out from a thread of its own."""
    args = (conversation_room(conversation_id), f"u{int(user_id)}")
    threading.Thread(target=_kick_in_thread, args=args, name="media-peer-kick", daemon=True).start()


async def node_call(cmd: str, room_id: str, *, timeout: float = 15.0, **data: Any) -> dict[str, Any]:
    """:func:`send_command` to the room's node for a client: a refusal becomes an
    :class:`MediaError` with the node's code (409), no answer a 503."""
    try:
        result = await send_command(room_node(room_id), cmd, room_id, timeout=timeout, **data)
    except UNREACHABLE as exc:
        log.warning("media node %s did not answer %s: %r", room_node(room_id), cmd, exc)
        raise MediaError(MediaCode.NODE_UNAVAILABLE) from exc
    if not result.get("ok"):
        raise MediaError.from_node(result)
    return result


async def start_recording(
    *, room_id: str, participants: Iterable[User], node: str = "", wait_seconds: float = 5.0
) -> Recording:
    """Register the recording, then have the node holding the room start writing it.

    Nothing is left behind when the node refuses (``media.no_publisher``...: an
    :class:`MediaError` 409) or does not answer (503): the row is removed, so the
    room can be recorded again.
    """
    node = node or room_node(room_id)
    recording = await sync_to_async(recording_register)(room_id=room_id, node=node, participants=list(participants))
    try:
        result = await send_command(
            node, "record.start", room_id, recording=str(recording.public_id), wait_seconds=wait_seconds
        )
        if not result.get("ok"):
            raise MediaError.from_node(result)
    except BaseException as exc:
        await Recording.objects.filter(pk=recording.pk).adelete()
        if isinstance(exc, UNREACHABLE):
            log.warning("media node %s did not answer record.start: %r", node, exc)
            raise MediaError(MediaCode.NODE_UNAVAILABLE) from exc
        raise
    return recording


async def stop_recording(recording: Recording, *, timeout: float = 30.0, reason: str = "") -> Recording:
    """Have the node finish the file; the row is sealed with the node's manifest on return.

    A node that no longer records the room (it restarted) cannot seal it: the
    row is sealed from the cut file, as for a lost node. No answer: 503 and the
    row stays (the heartbeat seals it if the node is gone). ``reason`` is kept on
    the ``finish`` transition (default ``record.stopped``).
    """
    try:
        result = await send_command(recording.node, "record.stop", recording.room_id, timeout=timeout)
    except UNREACHABLE as exc:
        raise MediaError(MediaCode.NODE_UNAVAILABLE) from exc
    if not result.get("ok"):
        if result.get("code") == "media.not_recording":
            recovered = await sync_to_async(recording_recover_or_drop)(recording=recording, reason="not_recording")
            if recovered is not None:
                return recovered
        if result.get("code") == MediaCode.RECORDING_EMPTY:
            # Nothing reached the recorder: no file; the row goes (audited) and the room may record again.
            await sync_to_async(recording_recover_or_drop)(recording=recording, reason="empty")
        raise MediaError.from_node(result)
    # The record.stopped event carries the same manifest; applying it twice is a no-op.
    event = {"type": "record.stopped", "recording": str(recording.public_id), "manifest": result["manifest"]}
    if reason:
        event["reason"] = reason  # why it stopped (e.g. consent_withdrawn), kept on the transition
    applied = await sync_to_async(handle_event)(event)
    assert applied is not None
    return applied


async def listen_events(channel: str = EVENTS_CHANNEL, *, until: asyncio.Event | None = None) -> None:
    """Consume node events until ``until`` is set (or forever)."""
    layer = get_channel_layer()
    assert layer is not None
    while until is None or not until.is_set():
        try:
            event = await asyncio.wait_for(layer.receive(channel), 1.0)
        except TimeoutError:
            continue
        try:
            await sync_to_async(handle_event)(event)
        except Exception:
            log.exception("media event %s not applied", event.get("type"))


async def watch_node(
    node: str,
    *,
    interval: float | None = None,
    misses: int | None = None,
    until: asyncio.Event | None = None,
) -> None:
    """Heartbeat: ping ``node`` every ``interval`` s; after ``misses`` unanswered
    pings in a row it is lost and :func:`node_lost` seals its open recordings.
    Keeps watching (a node that comes back is alive again)."""
    interval = float(interval or settings.MEDIA_HEARTBEAT_SECONDS)
    misses = int(misses or settings.MEDIA_HEARTBEAT_MISSES)
    missed = 0
    while until is None or not until.is_set():
        started = asyncio.get_running_loop().time()
        try:
            alive = bool((await send_command(node, "node.ping", "", timeout=interval)).get("ok"))
        except TimeoutError:
            alive = False
        except RedisError as exc:
            # The hub cannot reach Redis: that says nothing about the node (it keeps recording).
            log.warning("media node %s not pinged: %r", node, exc)
            alive = None
        if alive is None:
            pass
        elif alive:
            missed = 0
        else:
            missed += 1
            log.warning("media node %s missed heartbeat %d of %d", node, missed, misses)
            if missed == misses:
                sealed = await sync_to_async(node_lost)(node)
                log.error("media node %s lost; %d recording(s) sealed from cut files", node, len(sealed))
        rest = interval - (asyncio.get_running_loop().time() - started)
        if rest > 0:
            if until is None:
                await asyncio.sleep(rest)
            else:
                try:
                    await asyncio.wait_for(until.wait(), rest)
                except TimeoutError:
                    pass

"""WebRTC offer/answer over the hub socket: ``media.publish``, ``media.play``, ``media.leave``;
recording control: ``media.record_start``, ``media.record_stop`` (the same rules as REST,
:mod:`apps.media.recording`: clinical staff only, every patient's recording consent).

The same rooms and the same authorisation as WHIP/WHEP: :func:`access.room_access`
decides (active members of the conversation behind ``conv-<id>``; observers
only play) and audits, then the offer goes to the media node through the node
command API (:func:`control.send_command`: a direct call to the embedded node,
the channel layer to a remote one) with a hub-signed grant naming the command,
the room and the peer. The peer is always the socket's own user (``u<id>``); the
socket's login session goes with it (``sid``), so its logout ends these peers too.

A socket's publications and playbacks end with the socket: each one opened through
its ``media.publish`` / ``media.play`` is remembered under the socket (room and node
session id), and when the socket closes (any close code;
``hub.realtime.consumer.register_disconnect``) each is ended by its session id
(``session.end``), so another socket of the same user keeps its media.
"""

from __future__ import annotations

import logging
import time
import weakref
from typing import Any

from hub.errors import Invalid
from hub.realtime.consumer import register_disconnect
from hub.realtime.db import run_db
from hub.realtime.handlers import register_handler

from .access import RoomAccess, room_access
from .control import UNREACHABLE, node_call, room_node, start_recording, stop_recording, tell_node
from .errors import MediaCode, MediaError
from .recording import plan_start, recording_state, running, started, stop_raced_start, stopped

log = logging.getLogger(__name__)

SDP_MAX_CHARS = 32 * 1024


def _room(frame: dict[str, Any]) -> str:
    room = frame.get("room")
    if not isinstance(room, str) or not room or len(room) > 64:
        raise Invalid("缺少视频房间")
    return room


def _sdp(frame: dict[str, Any]) -> str:
    sdp = frame.get("sdp")
    if not isinstance(sdp, str) or not sdp.startswith("v=0") or len(sdp) > SDP_MAX_CHARS:
        raise Invalid("SDP 格式错误")
    return sdp


def _sid(socket: Any) -> str:
    """The socket's login session, as the node keys it (its logout ends what it opened)."""
    return str(socket.token_id) if socket.token_id else ""


# socket -> {(room, node session id)} of what it opened; forgotten with the socket.
_opened: weakref.WeakKeyDictionary[Any, set[tuple[str, str]]] = weakref.WeakKeyDictionary()


def _remember(socket: Any, room_id: str, session: Any) -> None:
    if isinstance(session, str) and session:
        _opened.setdefault(socket, set()).add((room_id, session))


async def on_disconnect(socket: Any) -> None:
    """The socket closed: end every publication and playback it opened (by session id: a
    newer one of the same peer, from another socket or WHIP, is left alone)."""
    for room_id, session in sorted(_opened.pop(socket, set())):
        node = room_node(room_id)
        try:
            # Told, not awaited: a closed socket waits for nobody (and reads no reply channel).
            await tell_node(node, "session.end", room_id, session=session)
        except (*UNREACHABLE, MediaError) as exc:  # the node is gone: its sessions went with it
            log.warning("media node %s not told to end a session of a closed socket: %r", node, exc)


async def _access(socket: Any, room_id: str, action: str) -> RoomAccess:
    return await run_db(room_access, socket.user, room_id, via=f"socket.{action}")


async def on_publish(socket: Any, frame: dict[str, Any]) -> dict[str, Any]:
    room_id, sdp = _room(frame), _sdp(frame)
    access = await _access(socket, room_id, "publish")
    if not access.publish:
        raise MediaError(MediaCode.PUBLISH_FORBIDDEN)
    result = await node_call(
        "peer.publish", room_id, peer=access.peer_id, sdp=sdp, sid=_sid(socket), issued=time.time()
    )
    _remember(socket, room_id, result.get("session"))
    return {"room": room_id, "peer": access.peer_id, "sdp": result["sdp"]}


async def on_play(socket: Any, frame: dict[str, Any]) -> dict[str, Any]:
    room_id, sdp = _room(frame), _sdp(frame)
    wait = frame.get("wait", 0)
    if not isinstance(wait, int | float) or isinstance(wait, bool) or not 0 <= wait <= 5:
        raise Invalid("wait 须为 0 到 5 秒")
    access = await _access(socket, room_id, "play")
    result = await node_call(
        "peer.play",
        room_id,
        peer=access.peer_id,
        sdp=sdp,
        wait_seconds=float(wait),
        sid=_sid(socket),
        issued=time.time(),  # membership checked just now
    )
    _remember(socket, room_id, result.get("session"))
    return {"room": room_id, "peer": access.peer_id, "publisher": result["publisher"], "sdp": result["sdp"]}


async def on_leave(socket: Any, frame: dict[str, Any]) -> dict[str, Any]:
    room_id = _room(frame)
    # Only ever the socket's own peer; membership is not needed to stop one's own media.
    peer = f"u{socket.user.pk}"
    await node_call("peer.leave", room_id, peer=peer)
    opened = _opened.get(socket)
    if opened:
        opened.difference_update({entry for entry in opened if entry[0] == room_id})
    return {"room": room_id, "peer": peer}


async def on_record_start(socket: Any, frame: dict[str, Any]) -> dict[str, Any]:
    room_id = _room(frame)
    plan = await run_db(plan_start, socket.user, room_id)  # refusals: nothing written
    recording = await start_recording(room_id=room_id, participants=plan.staff)
    missing = await run_db(started, plan, recording)
    if missing:
        raise await stop_raced_start(recording, missing)
    return recording_state(recording)


async def on_record_stop(socket: Any, frame: dict[str, Any]) -> dict[str, Any]:
    room_id = _room(frame)
    member, recording = await run_db(running, socket.user, room_id)
    recording = await stop_recording(recording)
    return await run_db(stopped, member, recording)


register_handler("media.publish", on_publish)
register_handler("media.play", on_play)
register_handler("media.leave", on_leave)
register_handler("media.record_start", on_record_start)
register_handler("media.record_stop", on_record_stop)
register_disconnect(on_disconnect)

"""A media node: rooms, RTMP ingest, HTTP-FLV/HLS and recorders, driven by commands.

Commands are dicts from the hub (over the channel layer in ``run_media_node``,
or in-process in the embedded mode). Each carries a hub-signed ``node`` grant
naming the command and the room (and the peer and login session ``sid`` it
acts for); nothing else is trusted. ``session.revoke`` (a logout on the hub)
refuses that sid's grants until they have all expired and ends what it
opened: WebRTC publications and playbacks, RTMP pushes, HTTP-FLV readers
(:meth:`MediaEngine.revoke_sid`). ``peer.kick`` (the peer was removed from the
room's conversation) ends everything that peer has in the room the same way and
refuses its grants for the room issued before the kick
(:meth:`MediaEngine.kick_peer`). ``room.close`` (a timed session ended) closes the room and
keeps it closed to every way in while grants issued before could still be used
(:meth:`MediaEngine.end_room`, ``media.room_closed``); ``room.open`` opens it again. Events
(``record.started``, ``record.stopped``, ``room.closed``...) go back through
``emit`` so the hub keeps ``recordings.Recording`` rows.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .grants import GrantError, verify_grant
from .recording import EmptyRecording, Recorder
from .room import ROOM_CLOSED, ROOM_CLOSED_MESSAGE, MediaEngine, MediaError
from .rtmp import RECONNECT_SECONDS
from .video import VideoTranscoder, acquire_h264, release_h264

log = logging.getLogger(__name__)

Emit = Callable[[dict[str, Any]], None]
COMMANDS = (
    "room.open",
    "room.close",
    "record.start",
    "record.stop",
    "node.ping",
    "peer.publish",
    "peer.play",
    "peer.leave",
    "session.end",
    "session.revoke",
    "peer.kick",
)
PEER_COMMANDS = ("peer.publish", "peer.play", "peer.leave", "peer.kick")
# Commands acting for a login session carry its ``sid`` in the signed grant as well.
SID_COMMANDS = ("peer.publish", "peer.play", "session.revoke")
PLAY_WAIT_MAX = 5.0
# Commands refused in a room closed by ``room.close`` (``media.room_closed``) until it is
# opened again (``room.open``) or every grant issued before the close has run out.
CLOSED_REFUSES = ("peer.publish", "peer.play", "record.start")


def _issued(value: Any) -> float | None:
    """The signed ``issued`` claim of a peer command (when the client's room grant was
    issued, or when the hub checked its membership), ``None`` if absent."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class MediaNode:
    def __init__(
        self,
        engine: MediaEngine,
        *,
        name: str,
        grant_key: bytes,
        manifest_key: bytes,
        recordings_root: Path,
        emit: Emit,
    ) -> None:
        self.engine = engine
        self.name = name
        self._grant_key = grant_key
        self._manifest_key = manifest_key
        self.recordings_root = recordings_root
        self._emit = emit
        self.recorders: dict[str, tuple[str, Recorder]] = {}  # room -> (recording id, recorder)
        self._h264: dict[str, VideoTranscoder] = {}  # room -> VP8 -> H.264 feeding its recorder

    def emit(self, kind: str, **data: Any) -> None:
        self._emit({"type": kind, "node": self.name, **data})

    async def handle(self, command: dict[str, Any]) -> dict[str, Any]:
        """Run one command; returns ``{"ok": True, ...}`` or ``{"ok": False, "code", "message"}``."""
        cmd = str(command.get("cmd", ""))
        room_id = str(command.get("room", ""))
        try:
            grant = verify_grant(str(command.get("grant", "")), key=self._grant_key, purpose="node")
            if cmd not in COMMANDS or grant.get("cmd") != cmd or grant.get("room") != room_id:
                raise GrantError("grant.invalid", "授权凭证与命令不符")
            if cmd in PEER_COMMANDS and (not command.get("peer") or grant.get("peer") != command.get("peer")):
                raise GrantError("grant.invalid", "授权凭证与成员不符")
            sid = str(command.get("sid") or "")
            if cmd in SID_COMMANDS and str(grant.get("sid") or "") != sid:
                raise GrantError("grant.invalid", "授权凭证与登录会话不符")
            if cmd in ("peer.publish", "peer.play") and self.engine.revoked.is_revoked(sid):
                raise GrantError("grant.revoked", "登录已退出，授权凭证已失效")
            if cmd in ("peer.publish", "peer.play") and not self.engine.kicked.admits(
                room_id, str(command["peer"]), _issued(grant.get("issued"))
            ):
                raise GrantError("grant.revoked", "已不在该会话中，授权凭证已失效")
            if cmd in CLOSED_REFUSES:
                self.engine.closed.refuse(room_id)
            if cmd == "room.close" and not command.get("until"):
                # Closed for as long as a room grant issued before now may be used: the
                # close command's own grant has their TTL, then the RTMP reconnect window.
                command = {**command, "until": float(grant.get("exp") or 0) + RECONNECT_SECONDS}
            return {"ok": True, **await getattr(self, "_" + cmd.replace(".", "_"))(room_id, command)}
        except (GrantError, MediaError) as exc:
            log.info("node %s refused %s %s: %s", self.name, cmd, room_id, exc.code)
            return {"ok": False, "code": exc.code, "message": exc.message}

    async def _node_ping(self, room_id: str, command: dict[str, Any]) -> dict[str, Any]:
        return {"rooms": sorted(self.engine.rooms), "recording": sorted(self.recorders)}

    async def _room_open(self, room_id: str, command: dict[str, Any]) -> dict[str, Any]:
        """Open the room explicitly (rooms are also created on first use): a room closed
        before by ``room.close`` admits peers again."""
        self.engine.closed.reopen(room_id)
        self.engine.room(room_id)
        self.emit("room.opened", room=room_id)
        return {}

    async def _room_close(self, room_id: str, command: dict[str, Any]) -> dict[str, Any]:
        """Seal the room's recording, close the room and keep it closed: until every room
        grant issued before now has expired (``until``, Unix seconds; by default the close
        command's own grant expiry, which has the room grants' TTL, plus the RTMP reconnect
        window), nobody gets in again (``media.room_closed``)."""
        if room_id in self.recorders:
            await self._record_stop(room_id, command)
        ended = await self.engine.end_room(room_id, float(command.get("until") or 0))
        self.emit("room.closed", room=room_id)
        return {"ended": ended}

    # --- WebRTC offer/answer relayed by the hub (its socket's media.* frames) ---

    async def _peer_publish(self, room_id: str, command: dict[str, Any]) -> dict[str, Any]:
        """Answer a publisher's offer; a new offer from the same peer replaces its publication
        (a client that reconnects publishes again) and its players follow."""
        peer = str(command["peer"])
        room = self.engine.room(room_id)
        sdp = await room.publish(peer, str(command.get("sdp", "")), sid=str(command.get("sid") or ""))
        await self._still_open(room, peer)
        return {"sdp": sdp, "session": room.publishers[peer].session}

    async def _peer_play(self, room_id: str, command: dict[str, Any]) -> dict[str, Any]:
        """Answer a player's offer with the other side's tracks (never the peer's own)."""
        peer = str(command["peer"])
        room = self.engine.room(room_id)
        wait = min(max(float(command.get("wait_seconds") or 0), 0.0), PLAY_WAIT_MAX)
        if wait > 0:
            publisher = await room.wait_publisher(timeout=wait, exclude=peer)
        else:
            found = next((p for p in room.publishers.values() if p.peer_id != peer), None)
            if found is None:
                raise MediaError("media.no_publisher", "对方尚未开始推流")
            publisher = found
        sid = str(command.get("sid") or "")
        answer = await room.subscribe(peer, str(command.get("sdp", "")), publisher_id=publisher.peer_id, sid=sid)
        await self._still_open(room, peer)
        return {"sdp": answer, "publisher": publisher.peer_id, "session": room.subscribers[peer].session}

    async def _still_open(self, room: Any, peer: str) -> None:
        """A ``room.close`` that came while an offer was being answered: the peer leaves the
        closed room at once and is refused like one who came after."""
        if self.engine.rooms.get(room.room_id) is not room:
            await room.leave(peer)
            self.engine.closed.refuse(room.room_id)
            raise MediaError(ROOM_CLOSED, ROOM_CLOSED_MESSAGE)

    async def _peer_leave(self, room_id: str, command: dict[str, Any]) -> dict[str, Any]:
        room = self.engine.rooms.get(room_id)
        if room is not None:
            await room.leave(str(command["peer"]))
        return {}

    async def _session_end(self, room_id: str, command: dict[str, Any]) -> dict[str, Any]:
        """End one publication or playback by its session id (the WHIP/WHEP resource);
        a session already gone, or replaced by a newer one of the peer, is left alone."""
        room = self.engine.rooms.get(room_id)
        ended = await room.end_session(str(command.get("session", ""))) if room is not None else False
        return {"ended": ended}

    async def _session_revoke(self, room_id: str, command: dict[str, Any]) -> dict[str, Any]:
        """A login session ended on the hub: refuse its grants until ``until`` (Unix
        seconds, when the last of them expires) and end every session opened with one."""
        sid = str(command.get("sid") or "")
        if not sid:
            raise MediaError("media.bad_command", "缺少登录会话")
        ended = await self.engine.revoke_sid(sid, float(command.get("until") or 0))
        log.info("node %s: login session %s revoked, %d media session(s) ended", self.name, sid, ended)
        return {"ended": ended}

    async def _peer_kick(self, room_id: str, command: dict[str, Any]) -> dict[str, Any]:
        """The peer was removed from the room (its conversation membership ended): end its
        media here and refuse its earlier grants for the room until ``until`` (Unix seconds)."""
        peer = str(command["peer"])
        ended = await self.engine.kick_peer(room_id, peer, float(command.get("until") or 0))
        log.info("node %s: %s removed from room %s, %d media session(s) ended", self.name, peer, room_id, ended)
        return {"ended": ended}

    async def _record_start(self, room_id: str, command: dict[str, Any]) -> dict[str, Any]:
        if room_id in self.recorders:
            raise MediaError("media.already_recording", "该房间已在录制")
        recording_id = str(command["recording"])
        storage_path = f"{room_id}/{recording_id}.mp4"
        room = self.engine.room(room_id)
        publisher = await room.wait_publisher(timeout=float(command.get("wait_seconds", 10)))
        sources = dict(publisher.sources)
        video = sources.get("video")
        if video is not None and video.codec_name.lower() == "vp8":
            # MP4 takes no VP8: record the track's shared H.264 transcode.
            transcoder = self._h264[room_id] = acquire_h264(video, label=f"{room_id}/{publisher.peer_id}")
            sources["video"] = transcoder.source
        recorder = Recorder(
            path=self.recordings_root / storage_path,
            key=self._manifest_key,
            room_id=room_id,
            sources=sources,
            meta={"room": room_id, "recording": recording_id, "publisher": publisher.peer_id},
        )
        recorder.start()
        self.recorders[room_id] = (recording_id, recorder)
        started = recorder.started_at or datetime.datetime.now(datetime.UTC)
        self.emit(
            "record.started",
            room=room_id,
            recording=recording_id,
            storage_path=storage_path,
            started_at=started.isoformat(),
        )
        return {"storage_path": storage_path}

    async def _record_stop(self, room_id: str, command: dict[str, Any]) -> dict[str, Any]:
        entry = self.recorders.pop(room_id, None)
        if entry is None:
            raise MediaError("media.not_recording", "该房间未在录制")
        recording_id, recorder = entry
        try:
            manifest = await recorder.stop()
        except EmptyRecording:
            self._release_h264(room_id)
            self.emit("record.empty", room=room_id, recording=recording_id)
            raise MediaError("media.recording_empty", "录制期间没有收到音视频，未生成录像") from None
        self._release_h264(room_id)
        self.emit("record.stopped", room=room_id, recording=recording_id, manifest=manifest)
        return {"duration_seconds": manifest["duration_seconds"], "manifest": manifest}

    def _release_h264(self, room_id: str) -> None:
        transcoder = self._h264.pop(room_id, None)
        if transcoder is not None:
            release_h264(transcoder)

    async def close(self) -> None:
        for room_id in list(self.recorders):
            recording_id, recorder = self.recorders.pop(room_id)
            try:
                manifest = await recorder.stop()
            except EmptyRecording:
                self._release_h264(room_id)
                self.emit("record.empty", room=room_id, recording=recording_id)
                continue
            self._release_h264(room_id)
            self.emit("record.stopped", room=room_id, recording=recording_id, manifest=manifest)
        await self.engine.close()

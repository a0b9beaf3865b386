"""Rooms of WebRTC publishers and subscribers joined by encoded forwarding."""

from __future__ import annotations

import asyncio
import inspect
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpTransceiver, RTCSessionDescription

from .codecs import video_codec_preferences
from .forwarding import ForwardedTrack, PacketSink, TrackSource
from .receiver import send_pli, use_encoded

log = logging.getLogger(__name__)

EventCallback = Callable[[str, dict[str, Any]], None]

# A publisher none of whose tracks delivered a packet for this long is gone (a killed
# tab, a lost network): ICE consent alone takes ~30 s to notice.
PUBLISHER_SILENCE_SECONDS = 3.0
# ... and one that never delivered anything this long after it joined.
PUBLISHER_FIRST_PACKET_SECONDS = 10.0
WATCH_INTERVAL_SECONDS = 0.5


# The longest a revoked login session is remembered (whatever the hub asks): bounds the map.
REVOKE_MAX_SECONDS = 24 * 3600.0
REVOKE_MAX_ENTRIES = 100_000


def admission(result: str | tuple[str, str] | tuple[str, str, float | None]) -> tuple[str, str]:
    """``(peer, sid)`` from an authoriser's answer: a peer id alone (no login session, as
    in the engine's own tests and tools) or the peer and the sid its grant carries (and,
    third, when the grant was issued: :func:`issued_at`)."""
    if isinstance(result, tuple):
        return str(result[0]), str(result[1] or "")
    return str(result), ""


def issued_at(result: str | tuple[str, str] | tuple[str, str, float | None]) -> float | None:
    """When the grant an authoriser admitted was issued (Unix seconds), if it says."""
    if isinstance(result, tuple) and len(result) > 2 and result[2] is not None:
        return float(result[2])
    return None


class KickedPeers:
    """Peers removed from a room (``peer.kick``): (room, peer) -> (kicked at, until).

    A grant of that peer for that room issued at or before the kick is refused until
    ``until`` (when every such grant, and the RTMP reconnect window, has run out); a
    grant issued after it (the peer was added again) is admitted. Bounded like
    :class:`RevokedSessions`."""

    def __init__(self, *, max_entries: int = REVOKE_MAX_ENTRIES) -> None:
        self._kicked: dict[tuple[str, str], tuple[float, float]] = {}
        self._max = max_entries

    def __len__(self) -> int:
        return len(self._kicked)

    def kick(self, room_id: str, peer_id: str, until: float, *, now: float | None = None) -> None:
        now = time.time() if now is None else now
        until = min(float(until), now + REVOKE_MAX_SECONDS)
        for key, (_, end) in list(self._kicked.items()):
            if end <= now:
                del self._kicked[key]
        key = (room_id, peer_id)
        if key not in self._kicked and len(self._kicked) >= self._max:
            del self._kicked[min(self._kicked, key=lambda k: self._kicked[k][1])]
        self._kicked[key] = (now, max(until, now))

    def admits(self, room_id: str, peer_id: str, issued: float | None, *, now: float | None = None) -> bool:
        """Whether a grant of ``peer_id`` for ``room_id`` issued at ``issued`` (``None``:
        unknown, taken as before the kick) may still join."""
        entry = self._kicked.get((room_id, peer_id))
        if entry is None:
            return True
        kicked_at, until = entry
        if until <= (time.time() if now is None else now):
            del self._kicked[(room_id, peer_id)]
            return True
        return issued is not None and issued > kicked_at


class RevokedSessions:
    """Login sessions (``sid`` of the grants) that ended: sid -> until (Unix seconds).

    A grant carrying a revoked sid is refused until ``until``, the moment every grant
    issued under it has expired (the hub sends its longest grant TTL from the logout).
    Bounded: entries past their time are dropped, ``until`` is capped at
    :data:`REVOKE_MAX_SECONDS`, and the map holds at most :data:`REVOKE_MAX_ENTRIES`
    (the entry that runs out first makes room)."""

    def __init__(self, *, max_entries: int = REVOKE_MAX_ENTRIES) -> None:
        self._until: dict[str, float] = {}
        self._max = max_entries

    def __len__(self) -> int:
        return len(self._until)

    def revoke(self, sid: str, until: float, *, now: float | None = None) -> None:
        now = time.time() if now is None else now
        until = min(float(until), now + REVOKE_MAX_SECONDS)
        if not sid or until <= now:
            return
        self._prune(now)
        if sid not in self._until and len(self._until) >= self._max:
            del self._until[min(self._until, key=self._until.__getitem__)]
        self._until[sid] = max(until, self._until.get(sid, 0.0))

    def is_revoked(self, sid: str, *, now: float | None = None) -> bool:
        until = self._until.get(sid) if sid else None
        if until is None:
            return False
        if until <= (time.time() if now is None else now):
            del self._until[sid]
            return False
        return True

    def _prune(self, now: float) -> None:
        for sid, until in list(self._until.items()):
            if until <= now:
                del self._until[sid]


class ClosedRooms:
    """Rooms ended by ``room.close`` (a timed session's end): room -> until (Unix seconds).

    Until then the node refuses to let anyone into the room again (WebRTC publish and play,
    WHIP/WHEP, RTMP publish and reconnect, HTTP-FLV/HLS) with :data:`ROOM_CLOSED`, whatever
    grant they hold: ``until`` is when the last grant issued before the close, and the RTMP
    reconnect window after it, has run out. An explicit ``room.open`` clears the entry.
    Bounded like :class:`RevokedSessions`."""

    def __init__(self, *, max_entries: int = REVOKE_MAX_ENTRIES) -> None:
        self._until: dict[str, float] = {}
        self._max = max_entries

    def __len__(self) -> int:
        return len(self._until)

    def close(self, room_id: str, until: float, *, now: float | None = None) -> None:
        now = time.time() if now is None else now
        until = min(float(until), now + REVOKE_MAX_SECONDS)
        if not room_id or until <= now:
            return
        for key, end in list(self._until.items()):
            if end <= now:
                del self._until[key]
        if room_id not in self._until and len(self._until) >= self._max:
            del self._until[min(self._until, key=self._until.__getitem__)]
        self._until[room_id] = max(until, self._until.get(room_id, 0.0))

    def reopen(self, room_id: str) -> None:
        self._until.pop(room_id, None)

    def is_closed(self, room_id: str, *, now: float | None = None) -> bool:
        until = self._until.get(room_id) if room_id else None
        if until is None:
            return False
        if until <= (time.time() if now is None else now):
            del self._until[room_id]
            return False
        return True

    def refuse(self, room_id: str) -> None:
        """Raise :class:`MediaError` ``media.room_closed`` if ``room_id`` is closed."""
        if self.is_closed(room_id):
            raise MediaError(ROOM_CLOSED, ROOM_CLOSED_MESSAGE)


# The refusal of a closed room (409 on the hub's REST answers, like the node's other refusals).
ROOM_CLOSED = "media.room_closed"
ROOM_CLOSED_MESSAGE = "本次问诊已结束，视频已关闭"


def new_session_id() -> str:
    """An unguessable id for one publication or playback (the WHIP/WHEP resource)."""
    return secrets.token_urlsafe(16)


class MediaError(Exception):
    """A request the engine refuses; ``code`` is stable for clients."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Publisher:
    peer_id: str
    pc: RTCPeerConnection | None
    sources: dict[str, TrackSource] = field(default_factory=dict)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    # The ingest's own AAC audio (RTMP), so FLV/HLS viewers get it without an Opus round trip.
    aac_audio: TrackSource | None = None
    # Called when a new session of the same peer replaces this one (close the old transport).
    on_replaced: Callable[[], Any] | None = None
    session: str = field(default_factory=new_session_id)
    watchdog: asyncio.Task[None] | None = None
    # The login session (grant ``sid``) this publication was opened under; "" for none.
    sid: str = ""


@dataclass
class Subscriber:
    peer_id: str
    publisher_id: str
    pc: RTCPeerConnection
    tracks: dict[str, ForwardedTrack] = field(default_factory=dict)
    session: str = field(default_factory=new_session_id)
    sid: str = ""  # the login session this playback was opened under


def offered_kinds(sdp: str) -> set[str]:
    """Media kinds with an m-line in an SDP offer."""
    return {line[2:].split(" ", 1)[0] for line in sdp.splitlines() if line.startswith("m=")}


def _negotiated_codec(transceiver: RTCRtpTransceiver) -> str:
    codecs = getattr(transceiver, "_codecs", [])
    return str(codecs[0].name) if codecs else ""


class Room:
    """One room: publishers (each one audio and one video track at most) and subscribers."""

    def __init__(
        self, room_id: str, *, configuration: RTCConfiguration | None = None, on_event: EventCallback | None = None
    ) -> None:
        self.room_id = room_id
        self._configuration = configuration
        self._on_event = on_event
        self.publishers: dict[str, Publisher] = {}
        self.subscribers: dict[str, Subscriber] = {}
        self._changed = asyncio.Condition()

    def _emit(self, kind: str, **data: Any) -> None:
        log.info("room %s: %s %s", self.room_id, kind, data)
        if self._on_event is not None:
            self._on_event(kind, {"room": self.room_id, **data})

    def _new_pc(self) -> RTCPeerConnection:
        return RTCPeerConnection(self._configuration)

    # --- publishing ------------------------------------------------------

    async def publish(self, peer_id: str, offer_sdp: str, *, sid: str = "") -> str:
        """Accept a publisher's offer; returns the SDP answer.

        H.264 constrained baseline is preferred (set before the remote
        description, where aiortc picks codecs); VP8 is accepted. A new offer
        of a peer already publishing replaces that publication (a reloaded
        page, a reconnect): its players follow the new one. ``sid`` is the
        login session it was opened under (:meth:`end_sid` ends it at logout).
        """
        pc = self._new_pc()
        kinds = offered_kinds(offer_sdp)
        if "video" in kinds:
            video = pc.addTransceiver("video", direction="recvonly")
            video.setCodecPreferences(video_codec_preferences())
        if "audio" in kinds:
            pc.addTransceiver("audio", direction="recvonly")
        publisher = Publisher(peer_id=peer_id, pc=pc, sid=sid)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            for transceiver in pc.getTransceivers():
                receiver = transceiver.receiver
                if receiver.track is None:
                    continue
                track = use_encoded(receiver)

                def request(receiver: Any = receiver) -> bool:
                    return send_pli(receiver)

                publisher.sources[track.kind] = TrackSource(
                    kind=track.kind,
                    codec_name=_negotiated_codec(transceiver),
                    track=track,
                    request_keyframe=request,
                    label=f"{self.room_id}/{peer_id}/{track.kind}",
                )
            if not publisher.sources:
                raise MediaError("media.no_tracks", "推流请求中没有音视频轨道")
            await pc.setLocalDescription(await pc.createAnswer())
        except MediaError:
            await pc.close()
            raise
        except Exception as exc:
            await pc.close()
            raise MediaError("media.bad_offer", "无法处理该推流请求") from exc

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            log.info("publisher %s/%s connection %s", self.room_id, peer_id, pc.connectionState)
            if pc.connectionState in ("failed", "closed"):
                await self.unpublish(peer_id, expected=publisher)

        await self.add_publisher(publisher)
        return str(pc.localDescription.sdp)

    async def add_publisher(self, publisher: Publisher, *, watch: bool = True) -> None:
        """Register a publisher whose sources are built (WebRTC, RTMP ingest, tests).

        A publisher of the same peer already here is replaced: its subscribers
        move to the new tracks (same kind and codec) and resume on the next
        keyframe without renegotiating; players left waiting by a publisher
        that died are picked up the same way. ``watch`` ends the publication
        after :data:`PUBLISHER_SILENCE_SECONDS` without a packet.
        """
        old = self.publishers.get(publisher.peer_id)
        self.publishers[publisher.peer_id] = publisher
        for source in publisher.sources.values():
            source.start()
        if old is not None:
            await self._retire(old)
            if old.on_replaced is not None:
                try:
                    old.on_replaced()
                except Exception:
                    log.exception("closing the replaced publication %s/%s failed", self.room_id, old.peer_id)
        self._adopt_waiting(publisher)
        publisher.ready.set()
        if watch:
            publisher.watchdog = asyncio.ensure_future(self._watch(publisher))
        self._emit(
            "publisher.replaced" if old is not None else "publisher.joined",
            peer=publisher.peer_id,
            kinds=sorted(publisher.sources),
        )
        async with self._changed:
            self._changed.notify_all()

    def _adopt_waiting(self, publisher: Publisher) -> None:
        """Subscribers of this peer (parked or on a replaced publication) follow ``publisher``."""
        for subscriber in self.subscribers.values():
            if subscriber.publisher_id != publisher.peer_id:
                continue
            for kind, track in subscriber.tracks.items():
                source = publisher.sources.get(kind)
                if source is None or source is track.source:
                    continue
                if source.codec_name.lower() != track.source.codec_name.lower():
                    log.info("subscriber %s/%s keeps waiting: %s codec changed", self.room_id, subscriber.peer_id, kind)
                    continue
                source.continue_after(track.source)
                track.rebind(source)

    async def _watch(self, publisher: Publisher) -> None:
        """End a publication whose tracks went silent (the publisher died without a goodbye)."""
        joined = time.monotonic()
        while self.publishers.get(publisher.peer_id) is publisher:
            await asyncio.sleep(WATCH_INTERVAL_SECONDS)
            now = time.monotonic()
            heard = [s.last_packet_at for s in publisher.sources.values() if s.last_packet_at is not None]
            if heard:
                silent = now - max(heard) > PUBLISHER_SILENCE_SECONDS
            else:
                silent = now - joined > PUBLISHER_FIRST_PACKET_SECONDS
            if silent and self.publishers.get(publisher.peer_id) is publisher:
                log.warning("publisher %s/%s silent: ended", self.room_id, publisher.peer_id)
                self._emit("publisher.lost", peer=publisher.peer_id)
                publisher.watchdog = None  # this task is ending it: unpublish must not cancel it
                await self.unpublish(publisher.peer_id, expected=publisher)
                return

    async def wait_publisher(
        self, peer_id: str | None = None, *, timeout: float = 10.0, exclude: str | None = None
    ) -> Publisher:
        """The named publisher (or any, other than ``exclude``) once it is in the room."""

        def find() -> Publisher | None:
            if peer_id is not None:
                return self.publishers.get(peer_id)
            return next((p for p in self.publishers.values() if p.peer_id != exclude), None)

        async def wait() -> Publisher:
            async with self._changed:
                await self._changed.wait_for(lambda: find() is not None)
            found = find()
            assert found is not None
            return found

        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError as exc:
            raise MediaError("media.no_publisher", "对方尚未开始推流") from exc

    def attach_sink(self, publisher_id: str, kind: str, sink: PacketSink) -> TrackSource:
        publisher = self.publishers.get(publisher_id)
        if publisher is None or kind not in publisher.sources:
            raise MediaError("media.no_publisher", "对方尚未开始推流")
        source = publisher.sources[kind]
        source.attach(sink)
        return source

    # --- subscribing -----------------------------------------------------

    async def subscribe(self, peer_id: str, offer_sdp: str, *, publisher_id: str, sid: str = "") -> str:
        """Answer a player's offer with the publisher's tracks, forwarded encoded.

        The subscription outlives the publication: when the publisher leaves or
        dies the tracks wait, and a republish of the same peer resumes them.
        """
        publisher = self.publishers.get(publisher_id)
        if publisher is None:
            raise MediaError("media.no_publisher", "对方尚未开始推流")
        if peer_id in self.subscribers:
            await self._close_subscriber(peer_id)
        pc = self._new_pc()
        subscriber = Subscriber(peer_id=peer_id, publisher_id=publisher_id, pc=pc, sid=sid)
        try:
            kinds = offered_kinds(offer_sdp)
            for kind in ("video", "audio"):
                source = publisher.sources.get(kind)
                if source is None or kind not in kinds:
                    continue
                transceiver = pc.addTransceiver(kind, direction="sendonly")
                if kind == "video":
                    # The forwarded bitstream fixes the codec: offer only what the source sends.
                    prefs = [
                        c
                        for c in video_codec_preferences()
                        if c.mimeType.lower() in (f"video/{source.codec_name.lower()}", "video/rtx")
                    ]
                    transceiver.setCodecPreferences(prefs)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            for transceiver in pc.getTransceivers():
                source = publisher.sources.get(transceiver.kind)
                if source is None or transceiver.direction not in ("sendonly", "sendrecv"):
                    continue
                track = ForwardedTrack(source)
                transceiver.sender.replaceTrack(track)
                # PLI/FIR from this subscriber goes upstream (throttled), not to
                # the sender's encoder, which forwarded packets bypass.
                transceiver.sender._send_keyframe = source.request_keyframe  # type: ignore[method-assign]
                subscriber.tracks[transceiver.kind] = track
            if not subscriber.tracks:
                raise MediaError("media.no_tracks", "播放请求中没有可接收的轨道")
            await pc.setLocalDescription(await pc.createAnswer())
        except MediaError:
            await self._stop_tracks(subscriber)
            await pc.close()
            raise
        except Exception as exc:
            await self._stop_tracks(subscriber)
            await pc.close()
            raise MediaError("media.bad_offer", "无法处理该播放请求") from exc

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            log.info("subscriber %s/%s connection %s", self.room_id, peer_id, pc.connectionState)
            if pc.connectionState in ("failed", "closed"):
                await self._close_subscriber(peer_id, expected=subscriber)

        self.subscribers[peer_id] = subscriber
        self._emit("subscriber.joined", peer=peer_id, publisher=publisher_id)
        return str(pc.localDescription.sdp)

    async def unsubscribe(self, peer_id: str) -> None:
        """End a peer's subscription only (its publication, if any, stays)."""
        await self._close_subscriber(peer_id)

    async def _stop_tracks(self, subscriber: Subscriber) -> None:
        for track in subscriber.tracks.values():
            track.stop()

    async def _close_subscriber(self, peer_id: str, expected: Subscriber | None = None) -> None:
        subscriber = self.subscribers.get(peer_id)
        if subscriber is None or (expected is not None and subscriber is not expected):
            return
        del self.subscribers[peer_id]
        await self._stop_tracks(subscriber)
        await subscriber.pc.close()
        self._emit("subscriber.left", peer=peer_id)

    # --- leaving ---------------------------------------------------------

    async def leave(self, peer_id: str) -> None:
        """Remove a peer's subscription and publication, if any (idempotent)."""
        await self._close_subscriber(peer_id)
        await self.unpublish(peer_id)

    async def unpublish(self, peer_id: str, *, expected: Publisher | None = None) -> None:
        """End a peer's publication only (idempotent); with ``expected``, only that one
        (an old session's cleanup must not end the session that replaced it)."""
        publisher = self.publishers.get(peer_id)
        if publisher is None or (expected is not None and publisher is not expected):
            return
        del self.publishers[peer_id]
        await self._retire(publisher)
        self._emit("publisher.left", peer=peer_id)

    async def _retire(self, publisher: Publisher) -> None:
        """Stop a publication; its subscriber tracks stay live, parked for a republish."""
        if publisher.watchdog is not None:
            publisher.watchdog.cancel()
            publisher.watchdog = None
        for source in publisher.sources.values():
            for track in source.movable_sinks():
                track.park()
            await source.stop()
        if publisher.pc is not None:
            await publisher.pc.close()

    def session(self, session_id: str) -> Publisher | Subscriber | None:
        """The publication or playback with this session id, if it is still here."""
        entries: list[Publisher | Subscriber] = [*self.publishers.values(), *self.subscribers.values()]
        return next((e for e in entries if secrets.compare_digest(e.session, session_id)), None)

    async def end_session(self, session_id: str) -> bool:
        """End one publication or playback by its session id; ``False`` if it is gone
        (ended, or replaced by a newer session of the same peer)."""
        entry = self.session(session_id)
        if isinstance(entry, Publisher):
            await self.unpublish(entry.peer_id, expected=entry)
        elif isinstance(entry, Subscriber):
            await self._close_subscriber(entry.peer_id, expected=entry)
        return entry is not None

    async def end_sid(self, sid: str) -> int:
        """End every publication and playback opened under login session ``sid`` (its
        logout); those of the same peer under another session stay. Returns how many."""
        if not sid:
            return 0
        ended = 0
        for subscriber in [s for s in self.subscribers.values() if s.sid == sid]:
            await self._close_subscriber(subscriber.peer_id, expected=subscriber)
            ended += 1
        for publisher in [p for p in self.publishers.values() if p.sid == sid]:
            await self.unpublish(publisher.peer_id, expected=publisher)
            ended += 1
        return ended

    async def end_peer(self, peer_id: str) -> int:
        """End ``peer_id``'s publication and playback here (it was removed from the room);
        returns how many there were."""
        ended = int(peer_id in self.subscribers) + int(peer_id in self.publishers)
        await self.leave(peer_id)
        return ended

    async def close(self) -> None:
        for peer_id in list(self.subscribers):
            await self._close_subscriber(peer_id)
        for peer_id in list(self.publishers):
            await self.leave(peer_id)

    def stats(self) -> dict[str, Any]:
        return {
            "room": self.room_id,
            "at": time.time(),
            "publishers": {
                pid: {
                    k: {"packets": s.packets_in, "keyframes": s.keyframes_in, "pli": s.pli_sent, "sinks": s.sink_count}
                    for k, s in p.sources.items()
                }
                for pid, p in self.publishers.items()
            },
            "subscribers": {
                sid: {
                    k: {"packets": t.packets_out, "dropped": t.dropped, "resyncs": t.resyncs}
                    for k, t in s.tracks.items()
                }
                for sid, s in self.subscribers.items()
            },
        }


async def _call_closer(close: Callable[[], Any], failure: str) -> int:
    try:
        result = close()
        if inspect.isawaitable(result):
            await result
    except Exception:
        log.exception(failure)
    return 1


class MediaEngine:
    """Owns the rooms of one media node."""

    def __init__(self, *, configuration: RTCConfiguration | None = None, on_event: EventCallback | None = None) -> None:
        self._configuration = configuration
        self._on_event = on_event
        self.rooms: dict[str, Room] = {}
        self.revoked = RevokedSessions()
        self.kicked = KickedPeers()
        self.closed = ClosedRooms()
        # (room, peer) -> closers of that peer's RTMP pushes and HTTP-FLV readers in the
        # room: :meth:`kick_peer` calls them.
        self._peer_closers: dict[tuple[str, str], set[Callable[[], Any]]] = {}
        # sid -> closers of connections outside the rooms' peer connections opened under it
        # (an RTMP push, an HTTP-FLV reader): :meth:`revoke_sid` calls them.
        self._closers: dict[str, set[Callable[[], Any]]] = {}

    def room(self, room_id: str) -> Room:
        """The room, created on first use."""
        room = self.rooms.get(room_id)
        if room is None:
            room = self.rooms[room_id] = Room(room_id, configuration=self._configuration, on_event=self._on_event)
        return room

    def track_sid(self, sid: str, close: Callable[[], Any]) -> Callable[[], None]:
        """Register ``close`` (sync or async) to be called when login session ``sid`` is
        revoked; returns the function that unregisters it (call it when the connection ends)."""
        if not sid:
            return lambda: None
        self._closers.setdefault(sid, set()).add(close)

        def untrack() -> None:
            closers = self._closers.get(sid)
            if closers is not None:
                closers.discard(close)
                if not closers:
                    del self._closers[sid]

        return untrack

    def track_peer(self, room_id: str, peer_id: str, close: Callable[[], Any]) -> Callable[[], None]:
        """Register ``close`` (sync or async) to be called when ``peer_id`` is removed from
        ``room_id`` (:meth:`kick_peer`); returns the function that unregisters it."""
        key = (room_id, peer_id)
        if not room_id or not peer_id:
            return lambda: None
        self._peer_closers.setdefault(key, set()).add(close)

        def untrack() -> None:
            closers = self._peer_closers.get(key)
            if closers is not None:
                closers.discard(close)
                if not closers:
                    del self._peer_closers[key]

        return untrack

    async def kick_peer(self, room_id: str, peer_id: str, until: float) -> int:
        """``peer_id`` was removed from ``room_id``: end everything it has there (WebRTC
        publication and playback, RTMP pushes, HTTP-FLV readers) and refuse its grants for
        the room issued before now until ``until``. Returns how many sessions ended."""
        self.kicked.kick(room_id, peer_id, until)
        ended = 0
        room = self.rooms.get(room_id)
        if room is not None:
            ended += await room.end_peer(peer_id)
        for close in list(self._peer_closers.pop((room_id, peer_id), ())):
            ended += await _call_closer(close, "closing a connection of a removed peer failed")
        return ended

    async def revoke_sid(self, sid: str, until: float) -> int:
        """Login session ``sid`` ended: refuse its grants until ``until`` (Unix seconds) and
        end what it opened here (WebRTC publications and playbacks in every room, RTMP
        pushes, HTTP-FLV readers). Returns how many sessions were ended."""
        self.revoked.revoke(sid, until)
        ended = 0
        for room in list(self.rooms.values()):
            ended += await room.end_sid(sid)
        for close in list(self._closers.pop(sid, ())):
            ended += await _call_closer(close, "closing a connection of a revoked session failed")
        return ended

    async def close_room(self, room_id: str) -> None:
        room = self.rooms.pop(room_id, None)
        if room is not None:
            await room.close()

    async def end_room(self, room_id: str, until: float) -> int:
        """``room.close``: refuse the room to everyone until ``until`` (Unix seconds), close
        it and end what is connected to it outside its peer connections (RTMP pushes, which
        may not reconnect, and HTTP-FLV readers). Returns how many of those were ended."""
        self.closed.close(room_id, until)
        await self.close_room(room_id)
        ended = 0
        for key in [k for k in self._peer_closers if k[0] == room_id]:
            for close in list(self._peer_closers.pop(key, ())):
                ended += await _call_closer(close, "closing a connection of a closed room failed")
        return ended

    async def close(self) -> None:
        for room_id in list(self.rooms):
            await self.close_room(room_id)

"""A visit's room closed at the session's end stays closed (issue 13): the timed session's
hard stop closes the IM conversation and the room on its node, and a client still holding
a grant issued before cannot get back in (WHIP, WHEP, RTMP push, HTTP-FLV, HLS:
``media.room_closed``), nor get a new grant (``im.conversation_closed``, nothing audited);
another visit's room plays on.

Real components: the production stack of ``tests/media/test_grants_logout.py`` (daphne and
``run_media_node``; ffmpeg pushes RTMP and reads HTTP-FLV, aiortc publishes over WHIP), the
session ended by ``apps.timed`` in this process (its media close commands the node over the
channel layer); and the embedded node for ``room.open`` reopening a closed room.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings

from apps.audit.models import AuditEvent
from apps.im.models import Conversation
from apps.media import embedded
from apps.media.control import send_command
from apps.timed import registry, services
from apps.timed.models import TimedSession
from media_engine.client import PublisherClient, SubscriberClient, publish_clips
from media_engine.room import ClosedRooms
from media_engine.synthetic import encode_h264, encode_opus
from tests.media.test_grants_logout import (
    dtls_connected,
    ffmpeg_read,
    get,
    running,
    stack,  # noqa: F401  (the fixture)
    stop,
    until,
)
from tests.media.test_visit_media import flv_other, playable, post_sdp, visit
from tests.media_engine.test_rtmp import ffmpeg_push
from tests.recordings.test_one_room import Stack, _http, api, http_signal
from tests.support.logcheck import no_logged_exceptions  # noqa: F401  (autouse)

pytestmark = pytest.mark.django_db(transaction=True)

KIND = "closed_room_test"


@pytest.fixture
def owner() -> Iterator[None]:
    registry.register_owner(KIND)
    yield
    registry.unregister_owner(KIND)
    services.set_media_closer(None)


def grants_audited(room: str) -> int:
    return AuditEvent.objects.filter(action="media.room_grant", object_id=room).count()


@pytest.mark.parametrize("stack", ["production"], indirect=True)
@pytest.mark.asyncio
async def test_a_room_closed_at_the_sessions_end_refuses_grants_issued_before(
    stack: Stack,  # noqa: F811
    owner: None,
    tmp_path: Path,
) -> None:
    server = stack.server
    v = await visit("closed", "13911119991", "13911119992")
    room, other = v["rooms"]
    doctor, patient, patient2 = v["doctor"], v["patients"][0], v["patients"][1]
    # Grants issued while the visit runs.
    doctor_grant = await api(server, doctor, f"/media/rooms/{room}/grant")
    patient_grant = await api(server, patient, f"/media/rooms/{room}/grant")
    other_doctor = await api(server, doctor, f"/media/rooms/{other}/grant")
    other_patient = await api(server, patient2, f"/media/rooms/{other}/grant")
    procs: list[asyncio.subprocess.Process] = []
    clients: list[PublisherClient | SubscriberClient] = []
    try:
        # The doctor pushes RTMP into both rooms (live-pusher); each patient reads it over HTTP-FLV.
        push = await ffmpeg_push(doctor_grant["rtmp_url"], 120)
        other_push = await ffmpeg_push(other_doctor["rtmp_url"], 120)
        procs += [push, other_push]
        await playable(flv_other(patient_grant["flv_url"]))
        await playable(flv_other(other_patient["flv_url"]))
        out = tmp_path / "patient.flv"
        reader = await ffmpeg_read(flv_other(patient_grant["flv_url"]), out)
        procs.append(reader)
        assert await until(lambda: out.exists() and out.stat().st_size > 20_000, 30)

        # The visit's timed session ends (apps.timed: the conversation closes, then the room on its node).
        conversation_id = int(room.removeprefix("conv-"))
        with override_settings(MEDIA_EMBEDDED=False, MEDIA_NODE=server.env["MEDIA_NODE"]):
            session = await sync_to_async(services.session_start)(
                KIND, "visit-1", 600, room_id=room, conversation_id=conversation_id
            )
            await sync_to_async(services.session_end)(session.pk, "ended")
            for _ in range(300):
                if (await TimedSession.objects.aget(pk=session.pk)).media_closed_at is not None:
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail("the session's room was not closed on its node")
        assert (await Conversation.objects.aget(pk=conversation_id)).closed_at is not None

        # What was connected to the room ended with it: the RTMP push and the HTTP-FLV reader.
        assert await until(lambda: not running(push) and not running(reader)), "the closed room's media still up"
        # The other visit's push goes on.
        assert running(other_push)

        # Grants issued before the close are refused by the node, whatever the way in.
        for url in (patient_grant["whip_url"], patient_grant["whep_url"]):
            status, body = await post_sdp(server.url + url, patient_grant["token"])
            assert status == 409 and body["code"] == "media.room_closed", (url, status, body)
            assert body["message"] == "本次问诊已结束，视频已关闭"
        for url in (patient_grant["flv_url"], patient_grant["hls_url"]):
            status, raw = await asyncio.to_thread(get, url)
            assert status == 409 and json.loads(raw)["code"] == "media.room_closed", (url, status, raw)
        # An RTMP push with the doctor's old grant (the URL a live-pusher reconnects with) is refused.
        started = time.monotonic()
        again = await ffmpeg_push(doctor_grant["rtmp_url"], 30)
        procs.append(again)
        _, err = await asyncio.wait_for(again.communicate(), 30)
        assert again.returncode != 0 and time.monotonic() - started < 25, err.decode(errors="replace")
        node_log = stack.logs[1].read_text(errors="replace")
        assert "media.room_closed" in node_log

        # A new grant (or web-view pass) for the closed conversation: refused, nothing audited.
        audited = await sync_to_async(grants_audited)(room)
        for path in (f"/media/rooms/{room}/grant", f"/media/rooms/{room}/pass"):
            status, raw, _ = await asyncio.to_thread(_http, "POST", f"{server.url}/api/v1{path}", patient, b"{}")
            assert status == 409 and json.loads(raw)["code"] == "im.conversation_closed", (path, status, raw)
        assert await sync_to_async(grants_audited)(room) == audited

        # The other room is unaffected: its old grants and new ones play and publish.
        await playable(flv_other(other_patient["flv_url"]))
        fresh = await api(server, patient2, f"/media/rooms/{other}/grant")
        video, audio = encode_h264(width=320, height=240, seconds=2.0, gop_frames=30), encode_opus(seconds=2.0)
        pub = await publish_clips(http_signal(server, fresh["whip_url"], fresh["token"], []), video, audio)
        clients.append(pub)
        assert await until(lambda: dtls_connected(pub))
        assert running(other_push)
    finally:
        for client in clients:
            await client.close()
        await stop(*procs)


@pytest.mark.asyncio
async def test_the_embedded_node_keeps_a_closed_room_closed_until_it_is_opened_again(tmp_path: Path) -> None:
    room, other = "conv-880001", "conv-880002"
    video, audio = encode_h264(seconds=2.0, gop_frames=30), encode_opus(seconds=2.0)

    def signal(room_id: str, peer: str) -> Any:
        async def post(sdp: str) -> str:
            result = await send_command("embedded", "peer.publish", room_id, peer=peer, sdp=sdp, sid="", issued=0)
            assert result["ok"], result
            return str(result["sdp"])

        return post

    with override_settings(MEDIA_EMBEDDED=True, MEDIA_NODE="embedded", RECORDINGS_ROOT=tmp_path):
        clients: list[PublisherClient] = []
        try:
            clients.append(await publish_clips(signal(room, "u1"), video, audio))
            clients.append(await publish_clips(signal(other, "u2"), video, audio))
            assert (await send_command("embedded", "room.close", room))["ok"]
            assert embedded.engine().closed.is_closed(room) and not embedded.engine().closed.is_closed(other)
            # Closed for as long as a grant issued before could be used (the grant TTL + RTMP reconnect).
            for cmd in ("peer.publish", "peer.play", "record.start"):
                refused = await send_command(
                    "embedded", cmd, room, peer="u1", sdp="v=0\r\n", sid="", issued=time.time(), recording="r"
                )
                assert refused == {"ok": False, "code": "media.room_closed", "message": "本次问诊已结束，视频已关闭"}
            assert room not in embedded.engine().rooms  # nothing recreated it
            assert "u2" in embedded.engine().rooms[other].publishers  # the other room is untouched
            # An explicit room.open of the same id admits peers again.
            assert (await send_command("embedded", "room.open", room))["ok"]
            clients.append(await publish_clips(signal(room, "u1"), video, audio))
            assert "u1" in embedded.engine().rooms[room].publishers
        finally:
            for client in clients:
                await client.close()
            await embedded.shutdown()


def test_closed_rooms_expire_are_bounded_and_reopen() -> None:
    closed = ClosedRooms(max_entries=2)
    now = 1_000_000.0
    closed.close("conv-1", now + 60, now=now)
    assert closed.is_closed("conv-1", now=now) and not closed.is_closed("conv-2", now=now)
    assert not closed.is_closed("conv-1", now=now + 61) and len(closed) == 0  # expired, forgotten
    closed.close("conv-1", now - 1, now=now)  # already over: nothing kept
    assert len(closed) == 0
    closed.close("conv-1", now + 10**9, now=now)  # capped at a day
    assert not closed.is_closed("conv-1", now=now + 24 * 3600 + 1)
    for i in range(3):
        closed.close(f"conv-{i}", now + 10 + i, now=now)
    assert len(closed) == 2 and not closed.is_closed("conv-0", now=now)  # the first to run out went
    closed.reopen("conv-1")
    assert not closed.is_closed("conv-1", now=now) and closed.is_closed("conv-2", now=now)

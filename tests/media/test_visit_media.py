"""A visit's video room (issue 13): a socket's media ends with the socket, a removed
participant loses the room at once, and a mini-program (RTMP push + HTTP-FLV, as
``live-pusher`` / ``live-player``) and a browser (WebRTC) see and hear each other.

Real outside clients against real processes, like ``tests/media/test_grants_logout.py``
(whose stack fixture this uses): daphne serves the hub, ``run_media_node`` holds the
rooms in production mode; ffmpeg pushes RTMP and reads HTTP-FLV, aiortc peers publish
and play over WHIP/WHEP and over the hub socket.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path
from typing import Any

import av
import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings

from apps.accounts.roles import Role
from apps.accounts.services import token_issue
from apps.im.models import Conversation
from apps.im.services import conversation_for_pair, member_remove
from media_engine.client import PublisherClient, SubscriberClient, publish_clips, subscribe
from media_engine.room import KickedPeers
from media_engine.synthetic import encode_h264, encode_opus, encode_vp8
from tests.conftest import make_patient, make_staff
from tests.media.test_grants_logout import (
    dtls_closed,
    dtls_connected,
    ffmpeg_read,
    get,
    grown,
    running,
    stack,  # noqa: F401  (the fixture)
    stop,
    until,
)
from tests.media_engine.test_rtmp import ffmpeg_push
from tests.recordings.test_one_room import Stack, _http, api, http_signal
from tests.support.logcheck import no_logged_exceptions  # noqa: F401  (autouse)
from tests.support.socket_client import SocketClient

pytestmark = pytest.mark.django_db(transaction=True)


@sync_to_async
def visit(tag: str, *phones: str) -> dict[str, Any]:
    """A doctor and patients, each pair in a conversation of its own (rooms ``conv-<id>``)."""
    doctor = make_staff(Role.DOCTOR, f"visitdoc{tag}")
    out: dict[str, Any] = {"doctor": token_issue(user=doctor.user).raw, "doctor_user": doctor.user, "rooms": []}
    for phone in phones:
        patient = make_patient(phone)
        conversation = conversation_for_pair(staff=doctor.user, patient=patient.user)
        out["rooms"].append(f"conv-{conversation.pk}")
        out.setdefault("patients", []).append(token_issue(user=patient.user).raw)
        out.setdefault("patient_users", []).append(patient.user)
    return out


def flv_other(url: str) -> str:
    """The live-player address: the other side only (``VisitVideo.vue`` adds the same)."""
    return url + "&other=1"


async def playable(url: str, timeout: float = 30.0) -> None:
    """Wait until the HTTP-FLV address has something to play (a live-player retries so)."""
    deadline = time.monotonic() + timeout
    status, body = await asyncio.to_thread(get, url)
    while status != 200 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        status, body = await asyncio.to_thread(get, url)
    assert status == 200, (status, body)


async def post_sdp(url: str, token: str) -> tuple[int, dict[str, Any]]:
    status, body, _ = await asyncio.to_thread(_http, "POST", url, token, b"v=0\r\n", "application/sdp")
    return status, json.loads(body or b"{}")


# --- closing a socket ends that socket's media sessions -----------------------------------


@pytest.mark.parametrize("stack", ["embedded", "production"], indirect=True)
@pytest.mark.asyncio
async def test_closing_a_socket_ends_that_sockets_media_only(stack: Stack, tmp_path: Path) -> None:  # noqa: F811
    server = stack.server
    v = await visit("sock", "13911118881", "13911118882")
    room1, room2 = v["rooms"]
    video, audio = encode_h264(width=320, height=240, seconds=2.0, gop_frames=30), encode_opus(seconds=2.0)
    # The doctor has two sockets (one login): socket A publishes into room 1, socket B into room 2.
    sock_a = await SocketClient.connect(server.ws_url, v["doctor"], origin=server.url, timeout=30)
    sock_b = await SocketClient.connect(server.ws_url, v["doctor"], origin=server.url, timeout=30)
    clients: list[PublisherClient | SubscriberClient] = []
    procs: list[asyncio.subprocess.Process] = []
    try:
        pub_a = await publish_clips(sock_a.signal({"type": "media.publish", "room": room1}), video, audio)
        pub_b = await publish_clips(sock_b.signal({"type": "media.publish", "room": room2}), video, audio)
        clients += [pub_a, pub_b]
        assert await until(lambda: dtls_connected(pub_a) and dtls_connected(pub_b))
        # Each patient plays their room over HTTP-FLV (live-player) and room 1's over WHEP too.
        g1 = await api(server, v["patients"][0], f"/media/rooms/{room1}/grant")
        g2 = await api(server, v["patients"][1], f"/media/rooms/{room2}/grant")
        whep1 = await subscribe(http_signal(server, g1["whep_url"], g1["token"], []))
        clients.append(whep1)
        await whep1.wait_count("video", 30, timeout=30)
        out1, out2 = tmp_path / "r1.flv", tmp_path / "r2.flv"
        read1, read2 = (
            await ffmpeg_read(flv_other(g1["flv_url"]), out1),
            await ffmpeg_read(flv_other(g2["flv_url"]), out2),
        )
        procs += [read1, read2]
        assert await until(lambda: out1.exists() and out1.stat().st_size > 20_000, 30)
        assert await until(lambda: out2.exists() and out2.stat().st_size > 20_000, 30)

        # Socket A closes (an application close code, not 1000: any close ends its media).
        await sock_a.transport.ws.close(code=4000)  # type: ignore[attr-defined]

        # The node ends A's publication: its peer connection closes, and its players see the
        # publisher leave (the live-player's stream ends; the WHEP tracks stop getting frames).
        assert await until(lambda: dtls_closed(pub_a)), "socket A's publication still up"
        assert await until(lambda: not running(read1)), "room 1's HTTP-FLV reader still streaming"
        frames = whep1.received["video"].count
        await asyncio.sleep(1.0)
        assert whep1.received["video"].count - frames < 5, "room 1's WHEP player still gets video"
        status, body = await asyncio.to_thread(get, flv_other(g1["flv_url"]))
        assert status == 404 and json.loads(body)["code"] == "media.no_publisher", (status, body)

        # Socket B of the same user keeps its publication: room 2 plays on.
        assert dtls_connected(pub_b) and running(read2)
        assert await until(grown(out2), 30), "room 2 (socket B) stopped"
        assert not sock_b.closed
    finally:
        await sock_a.close()
        await sock_b.close()
        for client in clients:
            await client.close()
        await stop(*procs)


# --- a removed participant loses the room at once -----------------------------------------


@pytest.mark.parametrize("stack", ["production"], indirect=True)
@pytest.mark.asyncio
async def test_a_removed_member_loses_the_room_at_once(stack: Stack, tmp_path: Path) -> None:  # noqa: F811
    server = stack.server
    v = await visit("kick", "13911118883")
    (room,) = v["rooms"]
    patient = v["patients"][0]
    doctor_grant = await api(server, v["doctor"], f"/media/rooms/{room}/grant")
    patient_grant = await api(server, patient, f"/media/rooms/{room}/grant")
    vp8, opus = encode_vp8(width=320, height=240, seconds=2.0, gop_frames=30), encode_opus(seconds=2.0)
    clients: list[PublisherClient | SubscriberClient] = []
    procs: list[asyncio.subprocess.Process] = []
    try:
        # The doctor pushes RTMP (live-pusher); the patient publishes over WHIP (a browser).
        push = await ffmpeg_push(doctor_grant["rtmp_url"], 120)
        procs.append(push)
        whip = await publish_clips(
            http_signal(server, patient_grant["whip_url"], patient_grant["token"], []), vp8, opus
        )
        clients.append(whip)
        assert await until(lambda: dtls_connected(whip))
        # Each reads the other over HTTP-FLV.
        await playable(flv_other(patient_grant["flv_url"]))
        await playable(flv_other(doctor_grant["flv_url"]))
        p_out, d_out = tmp_path / "patient.flv", tmp_path / "doctor.flv"
        p_read = await ffmpeg_read(flv_other(patient_grant["flv_url"]), p_out)
        d_read = await ffmpeg_read(flv_other(doctor_grant["flv_url"]), d_out)
        procs += [p_read, d_read]
        assert await until(lambda: p_out.exists() and p_out.stat().st_size > 20_000, 30)
        assert await until(lambda: d_out.exists() and d_out.stat().st_size > 20_000, 30)

        # The patient is removed from the conversation (the member-remove service; its
        # media.member_removed handler commands the room's node over the channel layer).
        conversation_id = int(room.removeprefix("conv-"))
        with override_settings(MEDIA_EMBEDDED=False, MEDIA_NODE=server.env["MEDIA_NODE"]):
            removed_at = time.monotonic()
            assert await sync_to_async(member_remove)(
                conversation=await Conversation.objects.aget(pk=conversation_id), user=v["patient_users"][0]
            )
            # At once (no timing asserted: a bound that only a hang exceeds, far below the grant's TTL):
            # the patient's WHIP publication and HTTP-FLV reader are cut.
            assert await until(lambda: dtls_closed(whip) and not running(p_read), 10.0), (
                f"the removed patient's media still up {time.monotonic() - removed_at:.2f}s after the removal"
            )
            await asyncio.sleep(0.5)  # the command thread has finished with the overridden node name

        # The doctor keeps theirs: the push goes on (its reader of the patient ended with the
        # patient's publication).
        assert running(push), "the doctor's RTMP push was cut"
        assert await until(lambda: not running(d_read))

        # The patient's grant, issued before the removal, is refused by WHIP, WHEP and HTTP-FLV;
        # a new grant is refused by the API.
        for url in (patient_grant["whip_url"], patient_grant["whep_url"]):
            status, body = await post_sdp(server.url + url, patient_grant["token"])
            assert status == 403 and body["code"] == "grant.revoked", (url, status, body)
        status, raw = await asyncio.to_thread(get, patient_grant["flv_url"])
        assert status == 403 and json.loads(raw)["code"] == "grant.revoked", (status, raw)
        status, raw, _ = await asyncio.to_thread(
            _http, "POST", f"{server.url}/api/v1/media/rooms/{room}/grant", patient, b"{}"
        )
        assert status == 403 and json.loads(raw)["code"] == "im.not_member", (status, raw)
        # ... while the doctor's grant still plays the doctor's own push (a self-preview).
        status, raw = await asyncio.to_thread(get, doctor_grant["flv_url"])
        assert status == 200 and raw.startswith(b"FLV")
    finally:
        for client in clients:
            await client.close()
        await stop(*procs)


def test_kicked_peers_refuse_earlier_grants_admit_later_ones_and_are_bounded() -> None:
    kicked = KickedPeers(max_entries=2)
    now = 1_000_000.0
    kicked.kick("conv-1", "u7", now + 60, now=now)
    assert not kicked.admits("conv-1", "u7", now - 1, now=now)  # a grant from before the removal
    assert not kicked.admits("conv-1", "u7", None, now=now)  # one that does not say when
    assert kicked.admits("conv-1", "u7", now + 0.001, now=now)  # a grant of a later membership
    assert kicked.admits("conv-2", "u7", now - 1, now=now) and kicked.admits("conv-1", "u8", None, now=now)
    assert kicked.admits("conv-1", "u7", None, now=now + 61) and len(kicked) == 0  # expired, forgotten
    for i in range(3):
        kicked.kick(f"conv-{i}", "u1", now + 10 + i, now=now)
    assert len(kicked) == 2 and kicked.admits("conv-0", "u1", None, now=now)  # the first to run out went


# --- real peers: an RTMP pusher (live-pusher) and a WebRTC browser in one visit -------------


def decoded(path: Path) -> dict[str, Any]:
    """Decode an FLV file: video frame count and size, audio frame count and rate."""
    out: dict[str, Any] = {"video": 0, "audio": 0, "size": None, "rate": None}
    with av.open(str(path)) as container:
        for frame in container.decode(*container.streams):
            if isinstance(frame, av.VideoFrame):
                out["video"] += 1
                out["size"] = (frame.width, frame.height)
            elif isinstance(frame, av.AudioFrame):
                out["audio"] += 1
                out["rate"] = frame.sample_rate
    return out


async def ffmpeg_copy(url: str, out: Path, seconds: float) -> int:
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg
    proc = await asyncio.create_subprocess_exec(
        ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-rw_timeout", "20000000",
        "-i", url, "-t", str(seconds), "-c", "copy", "-f", "flv", str(out),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), seconds + 30)
    assert proc.returncode == 0, err.decode(errors="replace")
    return proc.returncode


@pytest.mark.parametrize("stack", ["embedded", "production"], indirect=True)
@pytest.mark.asyncio
async def test_rtmp_pusher_and_webrtc_peer_see_and_hear_each_other(stack: Stack, tmp_path: Path) -> None:  # noqa: F811
    server = stack.server
    v = await visit("peers" + stack.server.env.get("MEDIA_EMBEDDED", ""), "13911118884")
    (room,) = v["rooms"]
    wechat = await api(server, v["patients"][0], f"/media/rooms/{room}/grant")  # the mini-program patient
    browser = await api(server, v["doctor"], f"/media/rooms/{room}/grant")  # the doctor's browser
    assert wechat["rtmp_url"].startswith("rtmp://") and "/live/" + room in wechat["rtmp_url"]
    clients: list[PublisherClient | SubscriberClient] = []
    procs: list[asyncio.subprocess.Process] = []
    try:
        # live-pusher: ffmpeg pushes H.264 320x240 + AAC 44.1 kHz over RTMP.
        push = await ffmpeg_push(wechat["rtmp_url"], 120)
        procs.append(push)
        # live-player alone in the room: the other side is not there, so nothing to play
        # (never the pusher itself) until the browser joins.
        await playable(wechat["flv_url"])  # without other=1: a self-preview once the push is in
        code, raw = await asyncio.to_thread(get, flv_other(wechat["flv_url"]))
        assert code == 404 and json.loads(raw)["code"] == "media.no_publisher", (code, raw)

        # The browser publishes VP8 352x288 + Opus over WHIP and plays the other side over WHEP.
        vp8 = encode_vp8(width=352, height=288, seconds=2.0, gop_frames=30)
        pub = await publish_clips(http_signal(server, browser["whip_url"], browser["token"], []), vp8, encode_opus())
        clients.append(pub)
        player = await subscribe(http_signal(server, browser["whep_url"], browser["token"], []), encoded=False)
        clients.append(player)
        # The browser sees and hears the pusher: decoded frames of both kinds.
        await player.wait_count("video", 30, timeout=30)
        await player.wait_count("audio", 50, timeout=30)
        video = player.received["video"].first_frame
        assert isinstance(video, av.VideoFrame) and (video.width, video.height) == (320, 240)
        audio = player.received["audio"].first_frame
        assert isinstance(audio, av.AudioFrame) and audio.sample_rate == 48000

        # The mini-program's live-player plays the other side over HTTP-FLV: the browser's VP8
        # (as H.264) and Opus (as AAC), both decoded; never its own push (320x240, 44.1 kHz).
        out = tmp_path / "wechat-sees.flv"
        await ffmpeg_copy(flv_other(wechat["flv_url"]), out, 4.0)
        got = decoded(out)
        assert got["size"] == (352, 288), got
        assert got["video"] >= 30 and got["audio"] >= 50, got
        assert got["rate"] == 48000, got
        assert running(push)
    finally:
        for client in clients:
            await client.close()
        await stop(*procs)

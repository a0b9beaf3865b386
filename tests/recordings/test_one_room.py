"""Every protocol reaches every room, on the embedded default and on the production set.

Real outside clients against real processes: daphne serves the hub (API,
socket, WHIP/WHEP); in production mode ``run_media_node`` holds the room and
``run_media_control`` applies its events, over Redis. ffmpeg pushes RTMP (as
WeChat's live-pusher) and pulls HTTP-FLV and HLS (as live-player); aiortc
peers publish and play over WHIP/WHEP and over the hub socket. One room, every
pairing; no traceback in any server log.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.test import override_settings

from apps.accounts.roles import Role
from apps.accounts.services import consent_set, token_issue
from apps.im.services import conversation_for_pair
from media_engine.client import publish_clips, subscribe
from media_engine.synthetic import encode_h264, encode_opus
from recordings.models import Recording
from recordings.services import recording_file
from tests.conftest import make_patient, make_staff
from tests.media_engine.test_live_out import decodes_as_h264_and_aac, ffmpeg_pull
from tests.media_engine.test_rtmp import ffmpeg_push
from tests.support.server import DaphneServer, free_port, production_env
from tests.support.socket_client import SocketClient

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Stack:
    server: DaphneServer
    recordings: Path
    logs: list[Path] = field(default_factory=list)
    procs: list[asyncio.subprocess.Process] = field(default_factory=list)


async def _start_process(args: list[str], env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    out = open(log, "wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "manage.py", *args, cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=out
    )
    out.close()
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    assert line.startswith("READY"), f"{args[0]} did not start: {line!r} (see {log})"
    log.with_suffix(".ready").write_text(line)
    return proc


@pytest.fixture(params=["embedded", "production"])
async def stack(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stack]:
    common = {"RECORDINGS_ROOT": str(tmp_path / "recordings")}
    procs: list[asyncio.subprocess.Process] = []
    logs: list[Path] = []
    if request.param == "embedded":
        # The embedded default's shape: one web process, in-memory layer, the node inside it.
        server = DaphneServer(
            REDIS_URL="",
            MEDIA_EMBEDDED="1",
            MEDIA_RTMP_PORT=str(free_port()),
            MEDIA_HTTP_PORT=str(free_port()),
            **common,
        )
    else:
        name = f"n{os.getpid()}{uuid.uuid4().hex[:6]}"
        events = f"media.events.{name}"
        db = connection.settings_dict
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}",
            **common,
        }
        node_log, control_log = tmp_path / "node.log", tmp_path / "control.log"
        node = await _start_process(
            ["run_media_node", "--name", name, "--rtmp-port", "0", "--http-port", "0", "--events-channel", events],
            env,
            node_log,
        )
        procs.append(node)
        ready = node_log.with_suffix(".ready").read_text()
        match = re.search(r"rtmp=(\d+) http=(\d+)", ready)
        assert match
        rtmp_port, http_port = match.groups()
        procs.append(
            await _start_process(["run_media_control", "--node", name, "--events-channel", events], env, control_log)
        )
        logs += [node_log, control_log]
        server = DaphneServer(
            **production_env(
                MEDIA_EMBEDDED="0",
                MEDIA_NODE=name,
                MEDIA_PUBLIC_RTMP_URL=f"rtmp://127.0.0.1:{rtmp_port}",
                MEDIA_PUBLIC_LIVE_URL=f"http://127.0.0.1:{http_port}",
                **common,
            )
        )
    server.log_path.unlink(missing_ok=True)
    server.start()
    stack = Stack(server=server, recordings=tmp_path / "recordings", logs=[server.log_path, *logs], procs=procs)
    try:
        yield stack
    finally:
        server.stop()
        for proc in procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), 15)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
    for log in stack.logs:
        text = log.read_text(errors="replace")
        assert "Traceback" not in text, f"{log.name}:\n{text[-4000:]}"


@sync_to_async
def setup_room() -> tuple[str, str, str]:
    doctor = make_staff(Role.DOCTOR, "roomdoc")
    patient = make_patient("13911116666")
    conv = conversation_for_pair(staff=doctor.user, patient=patient.user)
    # Recording needs the patient's consent (apps.media.recording).
    consent_set(user=patient.user, purpose="recording", granted=True)
    return f"conv-{conv.pk}", token_issue(user=doctor.user).raw, token_issue(user=patient.user).raw


def _http(method: str, url: str, token: str, body: bytes = b"", content_type: str = "application/json") -> Any:
    req = urllib.request.Request(url, data=body if method == "POST" else None, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    if method == "POST":
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


async def api(server: DaphneServer, token: str, path: str) -> dict[str, Any]:
    status, body, _ = await asyncio.to_thread(_http, "POST", f"{server.url}/api/v1{path}", token, b"{}")
    assert status == 200, (path, status, body)
    return dict(json.loads(body))


def http_signal(server: DaphneServer, path: str, token: str, locations: list[str]) -> Callable[[str], Awaitable[str]]:
    async def post(sdp: str) -> str:
        status, body, headers = await asyncio.to_thread(
            _http, "POST", server.url + path, token, sdp.encode(), "application/sdp"
        )
        assert status == 201, (path, status, body)
        locations.append(headers["Location"])
        return str(body.decode())

    return post


async def record(stack: Stack, token: str, room: str, seconds: float) -> Recording:
    server = stack.server
    started = await api(server, token, f"/media/rooms/{room}/recording/start")
    assert started["status"] == "recording"
    await asyncio.sleep(seconds)
    stopped = await api(server, token, f"/media/rooms/{room}/recording/stop")
    assert stopped["status"] == "complete", stopped
    row = await Recording.objects.aget(public_id=stopped["public_id"])
    with override_settings(RECORDINGS_ROOT=stack.recordings), av.open(str(recording_file(row))) as container:
        assert sorted(s.type for s in container.streams) == ["audio", "video"]
        assert sum(1 for _ in container.decode(video=0)) >= 30
    return row


async def test_every_protocol_reaches_one_room(stack: Stack, tmp_path: Path) -> None:
    server = stack.server
    room, doctor, patient = await setup_room()
    patient_grant = await api(server, patient, f"/media/rooms/{room}/grant")
    doctor_grant = await api(server, doctor, f"/media/rooms/{room}/grant")
    assert patient_grant["rtmp_url"].startswith("rtmp://") and patient_grant["flv_url"].startswith("http")
    # Nobody publishes yet: the node's refusal is the client's 409, and nothing is left behind.
    status, body, _ = await asyncio.to_thread(
        _http, "POST", f"{server.url}/api/v1/media/rooms/{room}/recording/start", doctor, b"{}"
    )
    assert status == 409 and json.loads(body)["code"] == "media.no_publisher", body
    assert not await Recording.objects.filter(room_id=room).aexists()
    status, body, _ = await asyncio.to_thread(
        _http, "POST", f"{server.url}/api/v1/media/rooms/{room}/recording/stop", doctor, b"{}"
    )
    assert status == 404, body
    socket = await SocketClient.connect(server.ws_url, doctor, origin=server.url, timeout=30)
    video, audio = encode_h264(width=320, height=240, seconds=2.0, gop_frames=30), encode_opus(seconds=2.0)
    locations: list[str] = []
    try:
        # 1. An ffmpeg RTMP push (the patient's live-pusher) is played over WHEP and over the socket.
        push = await ffmpeg_push(patient_grant["rtmp_url"], 30)
        try:
            whep = await subscribe(http_signal(server, doctor_grant["whep_url"], doctor_grant["token"], locations))
            try:
                await whep.wait_count("video", 30, timeout=20)
                await whep.wait_count("audio", 25, timeout=20)
            finally:
                await whep.close()
            played = await subscribe(socket.signal({"type": "media.play", "room": room, "wait": 5}))
            try:
                await played.wait_count("video", 30, timeout=20)
                await played.wait_count("audio", 25, timeout=20)
            finally:
                await played.close()
                await socket.request({"type": "media.leave", "room": room})
        finally:
            push.kill()
            await push.wait()

        # 2. A WHIP publisher (the patient's browser) is pulled as HTTP-FLV and HLS, and recorded.
        pub = await publish_clips(
            http_signal(server, patient_grant["whip_url"], patient_grant["token"], locations), video, audio
        )
        try:
            flv_out, hls_out = tmp_path / "pulled.flv", tmp_path / "pulled.ts"
            (flv_code, flv_err), (hls_code, hls_err) = await asyncio.gather(
                ffmpeg_pull(patient_grant["flv_url"], flv_out, 3),
                ffmpeg_pull(patient_grant["hls_url"], hls_out, 2),
            )
            assert flv_code == 0, flv_err
            assert hls_code == 0, hls_err
            assert decodes_as_h264_and_aac(flv_out)["video_seconds"] >= 2.0
            assert decodes_as_h264_and_aac(hls_out)["video_seconds"] >= 1.0
            whip_row = await record(stack, doctor, room, 3.0)
            assert whip_row.manifest["publisher"] == patient_grant["peer_id"]
            # The WHIP session ends with its own Location (no grant needed).
            status, body, _ = await asyncio.to_thread(_http, "DELETE", server.url + locations[-1], "")
            assert status == 200, body
        finally:
            await pub.close()

        # 3. A socket publisher (the doctor's console) is recorded in the same room.
        published = await publish_clips(socket.signal({"type": "media.publish", "room": room}), video, audio)
        try:
            socket_row = await record(stack, doctor, room, 3.0)
            assert socket_row.manifest["publisher"] == doctor_grant["peer_id"]
        finally:
            await published.close()
            await socket.request({"type": "media.leave", "room": room})
    finally:
        await socket.close()

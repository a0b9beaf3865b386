"""Media grants and replay URLs end with the login session they were issued under
(issue 11, finding 12).

After a logout (or log out everywhere, an admin's revoke, a password change that
ends the other sessions) a replay URL issued before answers ``grant.revoked``
and serves no bytes; a room grant issued before is refused by WHIP, WHEP, RTMP
publish and HTTP-FLV/HLS; what the session had running (a WHIP publication, an
ffmpeg RTMP push, an HTTP-FLV read, a socket publication) ends; another session
of the same user keeps its media; and a media node that cannot be reached never
fails the logout.

Real outside clients against real processes, as ``tests/recordings/test_one_room.py``:
daphne serves the hub, in production mode ``run_media_node`` holds the rooms; ffmpeg
pushes RTMP and reads HTTP-FLV, aiortc peers publish and play over WHIP/WHEP and
the socket.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shutil
import signal
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.test import override_settings

from apps.accounts.models import AuthToken
from apps.accounts.roles import Role
from apps.accounts.services import token_issue
from apps.im.services import conversation_for_pair
from media_engine.client import PublisherClient, SubscriberClient, publish_clips, subscribe
from media_engine.synthetic import encode_h264, encode_opus
from recordings.models import Recording
from tests.conftest import STRONG, Api, Persona, make_patient, make_staff
from tests.media_engine.test_rtmp import ffmpeg_push
from tests.recordings.test_one_room import Stack, _http, _start_process, api, http_signal
from tests.recordings.test_replay import write_mp4
from tests.support.logcheck import no_logged_exceptions  # noqa: F401  (autouse)
from tests.support.server import DaphneServer, free_port, production_env
from tests.support.socket_client import SocketClient

pytestmark = pytest.mark.django_db(transaction=True)

REPO = Path(__file__).resolve().parents[2]


# --- the stack (copied from tests/recordings/test_one_room.py) -------------------------


@pytest.fixture(params=["embedded", "production"])
async def stack(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stack]:
    common = {"RECORDINGS_ROOT": str(tmp_path / "recordings")}
    procs: list[asyncio.subprocess.Process] = []
    logs: list[Path] = []
    if request.param == "embedded":
        server = DaphneServer(
            REDIS_URL="",
            MEDIA_EMBEDDED="1",
            MEDIA_RTMP_PORT=str(free_port()),
            MEDIA_HTTP_PORT=str(free_port()),
            **common,
        )
    else:
        name = f"g{os.getpid()}{uuid.uuid4().hex[:6]}"
        events = f"media.events.{name}"
        db = connection.settings_dict
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}",
            **common,
        }
        node_log = tmp_path / "node.log"
        node = await _start_process(
            ["run_media_node", "--name", name, "--rtmp-port", "0", "--http-port", "0", "--events-channel", events],
            env,
            node_log,
        )
        procs.append(node)
        match = re.search(r"rtmp=(\d+) http=(\d+)", node_log.with_suffix(".ready").read_text())
        assert match
        rtmp_port, http_port = match.groups()
        logs.append(node_log)
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


# --- helpers ----------------------------------------------------------------------------


async def until(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Poll ``predicate`` (no timing assertion: the bound only stops a hung test)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.1)
    return predicate()


async def ffmpeg_read(url: str, out: Path) -> asyncio.subprocess.Process:
    """An HTTP-FLV reader (live-player) that runs until the stream ends."""
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg, "ffmpeg CLI missing"
    return await asyncio.create_subprocess_exec(
        ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-rw_timeout", "30000000",
        "-i", url, "-t", "120", "-c", "copy", "-f", "flv", str(out),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def stop(*procs: asyncio.subprocess.Process) -> None:
    for proc in procs:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


def running(proc: asyncio.subprocess.Process) -> bool:
    return proc.returncode is None


def dtls_closed(client: PublisherClient) -> bool:
    """The server closed this peer connection (its DTLS close reached the client)."""
    transport = client.pc.getTransceivers()[0].sender.transport
    return transport is not None and transport.state == "closed"


def dtls_connected(client: PublisherClient) -> bool:
    """The peer connection's DTLS session is up (only then does a close reach the client)."""
    transport = client.pc.getTransceivers()[0].sender.transport
    return transport is not None and transport.state == "connected"


def grown(proc_out: Path) -> Callable[[], bool]:
    size = proc_out.stat().st_size if proc_out.exists() else 0
    return lambda: proc_out.exists() and proc_out.stat().st_size > size


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read(2048)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


async def refused_as_revoked(status_body: tuple[int, bytes]) -> None:
    status, body = status_body
    assert status == 403, (status, body)
    assert json.loads(body)["code"] == "grant.revoked", body


@sync_to_async
def setup_rooms() -> dict[str, Any]:
    doctor = make_staff(Role.DOCTOR, "grantdoc")
    p1, p2, p3 = make_patient("13911117771"), make_patient("13911117772"), make_patient("13911117773")
    room1, room2, room3 = (f"conv-{conversation_for_pair(staff=doctor.user, patient=p.user).pk}" for p in (p1, p2, p3))
    session_a, session_b = token_issue(user=doctor.user), token_issue(user=doctor.user)
    return {
        "room1": room1,
        "room2": room2,
        "room3": room3,
        "a": session_a.raw,
        "a_id": session_a.token.pk,
        "b": session_b.raw,
        "p1": token_issue(user=p1.user).raw,
    }


# --- (b) (c) (d): a logout ends its media and refuses its grants; the other session stays ---


@pytest.mark.asyncio
async def test_logout_ends_the_sessions_media_and_refuses_its_grants(stack: Stack, tmp_path: Path) -> None:
    server = stack.server
    s = await setup_rooms()
    # One doctor, two login sessions (A logs out, B stays); the doctor is one peer (u<id>) in
    # every room, so A's WHIP publication (room 1), RTMP push (room 2) and socket publication
    # (room 3) are each in a room of its own; B plays room 1 (the patient's push).
    room1, room2, room3 = s["room1"], s["room2"], s["room3"]
    p1_grant = await api(server, s["p1"], f"/media/rooms/{room1}/grant")
    a1 = await api(server, s["a"], f"/media/rooms/{room1}/grant")  # session A (logs out)
    a2 = await api(server, s["a"], f"/media/rooms/{room2}/grant")
    b1 = await api(server, s["b"], f"/media/rooms/{room1}/grant")  # session B (same doctor, stays)
    video, audio = encode_h264(width=320, height=240, seconds=2.0, gop_frames=30), encode_opus(seconds=2.0)
    locations: list[str] = []
    procs: list[asyncio.subprocess.Process] = []
    clients: list[PublisherClient | SubscriberClient] = []
    socket = await SocketClient.connect(server.ws_url, s["a"], origin=server.url, timeout=30)
    try:
        # The patient pushes into room 1 over RTMP (another user: stays).
        p1_push = await ffmpeg_push(p1_grant["rtmp_url"], 120)
        procs.append(p1_push)
        # Session B plays it over WHEP and over HTTP-FLV.
        b_whep = await subscribe(http_signal(server, b1["whep_url"], b1["token"], locations))
        clients.append(b_whep)
        await b_whep.wait_count("video", 30, timeout=30)
        b_flv_out = tmp_path / "b.flv"
        b_flv = await ffmpeg_read(b1["flv_url"], b_flv_out)
        procs.append(b_flv)
        # Session A: a WHIP publication and an HTTP-FLV read (of the patient, room 1's first
        # publisher) in room 1, an RTMP push in room 2, a publication over its socket in room 3.
        a_whip = await publish_clips(http_signal(server, a1["whip_url"], a1["token"], locations), video, audio)
        clients.append(a_whip)
        a_flv_out = tmp_path / "a.flv"
        a_flv = await ffmpeg_read(a1["flv_url"], a_flv_out)
        procs.append(a_flv)
        a_push = await ffmpeg_push(a2["rtmp_url"], 120)
        procs.append(a_push)
        assert await until(lambda: b_flv_out.exists() and b_flv_out.stat().st_size > 50_000, 30)
        assert await until(lambda: a_flv_out.exists() and a_flv_out.stat().st_size > 50_000, 30)
        a_socket_pub = await publish_clips(socket.signal({"type": "media.publish", "room": room3}), video, audio)
        clients.append(a_socket_pub)
        assert all(running(p) for p in procs), "every stream runs before the logout"
        # Both publications are up end to end: a close before the DTLS handshake ends never
        # reaches the client, so the check below would wait for nothing.
        assert await until(lambda: dtls_connected(a_whip) and dtls_connected(a_socket_pub))

        # Session A logs out.
        status, body, _ = await asyncio.to_thread(_http, "POST", f"{server.url}/api/v1/auth/logout", s["a"], b"{}")
        assert status == 204, body
        assert not await AuthToken.objects.filter(pk=s["a_id"], revoked_at__isnull=True).aexists()

        # (c) what A had running ends within a few seconds.
        assert await until(lambda: not running(a_push)), "A's RTMP push still connected"
        assert await until(lambda: not running(a_flv)), "A's HTTP-FLV read still streaming"
        assert await until(lambda: dtls_closed(a_whip)), "A's WHIP publication still up"
        assert await until(lambda: dtls_closed(a_socket_pub)), "A's socket publication still up"

        # (b) A's room grants, issued before the logout, are refused everywhere.
        for path in (a1["whip_url"], a1["whep_url"]):
            status, body, _ = await asyncio.to_thread(
                _http, "POST", server.url + path, a1["token"], b"v=0\r\n", "application/sdp"
            )
            await refused_as_revoked((status, body))
        await refused_as_revoked(await asyncio.to_thread(get, a1["flv_url"]))
        await refused_as_revoked(await asyncio.to_thread(get, a1["hls_url"]))
        again = await ffmpeg_push(a2["rtmp_url"], 120)
        procs.append(again)
        assert await until(lambda: not running(again)), "an RTMP push with A's grant was admitted"
        assert again.returncode != 0

        # (d) session B of the same doctor keeps its media, and the patient's push goes on.
        before = b_whep.received["video"].count
        await b_whep.wait_count("video", before + 30, timeout=30)
        assert await until(grown(b_flv_out), 30), "B's HTTP-FLV read stopped"
        assert running(b_flv) and running(p1_push)
        status, body = await asyncio.to_thread(get, b1["flv_url"])
        assert status == 200 and body.startswith(b"FLV"), (status, body[:100])
    finally:
        await socket.close()
        for client in clients:
            await client.close()
        await stop(*procs)


# --- (e): an unreachable media node never fails the logout -------------------------------


class _Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def control_warnings() -> Iterator[_Warnings]:
    handler = _Warnings()
    logger = logging.getLogger("apps.media.control")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


@pytest.mark.parametrize("route", ["/auth/logout", "/auth/logout/all"])
def test_logout_answers_when_the_media_node_is_unreachable(control_warnings: _Warnings, route: str) -> None:
    doctor = make_staff(Role.DOCTOR, "nodedowndoc")
    token = token_issue(user=doctor.user)
    # A remote node nobody runs: the command waits for a reply that never comes.
    with override_settings(MEDIA_EMBEDDED=False, MEDIA_NODE=f"gone-{uuid.uuid4().hex[:8]}"):
        response = Api(token.raw).post(route)
    assert response.status_code in (200, 204), response.content
    assert AuthToken.objects.get(pk=token.token.pk).revoked_at is not None
    # The logout did not wait for the node; the revocation warns once its wait is over.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not any(
        f"login session {token.token.pk} ended" in m for m in control_warnings.messages
    ):
        time.sleep(0.1)
    assert any(f"login session {token.token.pk} ended" in m for m in control_warnings.messages), (
        control_warnings.messages
    )


# --- (a): a replay URL issued before the logout answers grant.revoked, no bytes -------


@pytest.fixture
def replay_setup(tmp_path: Path) -> Iterator[tuple[Recording, Persona]]:
    from recordings.services import recording_recover, recording_start

    with override_settings(RECORDINGS_ROOT=tmp_path):
        doctor = make_staff(Role.DOCTOR, "replaydoc")
        (tmp_path / "room-r").mkdir()
        write_mp4(tmp_path / "room-r" / "a.mp4")
        rec = recording_start(room_id="room-r", storage_path="room-r/a.mp4", participants=[doctor.user])
        yield recording_recover(recording=rec), doctor


def _end(how: str, doctor: Persona, session: Api, other: Api) -> None:
    """End ``session`` the way ``how`` says (``other`` is a session that stays)."""
    if how == "logout":
        assert session.post("/auth/logout").status_code == 204
    elif how == "admin_revoke":
        admin = make_staff(Role.SYSADMIN, "replayadmin")
        response = Api(token_issue(user=admin.user).raw).post(f"/admin/users/{doctor.user.pk}/sessions/revoke")
        assert response.status_code == 200, response.content
    elif how == "password_change":
        body = {"old_password": STRONG, "new_password": "Quiet-River-42!"}
        assert other.post("/auth/password/change", body).status_code == 204


@pytest.mark.parametrize("how", ["logout", "admin_revoke", "password_change"])
def test_replay_url_from_an_ended_session_serves_nothing(
    replay_setup: tuple[Recording, Persona], how: str, tmp_path: Path
) -> None:
    recording, doctor = replay_setup
    session, other = Api(token_issue(user=doctor.user).raw), Api(token_issue(user=doctor.user).raw)
    with override_settings(RECORDINGS_ROOT=tmp_path):
        url = session.post(f"/recordings/{recording.public_id}/replay").json()["url"]
        kept_url = other.post(f"/recordings/{recording.public_id}/replay").json()["url"]
        assert session.client.get(url).status_code == 200  # it worked while the session lived
        _end(how, doctor, session, other)
        response = session.client.get(url, HTTP_RANGE="bytes=0-99")
        assert response.status_code == 403
        assert response.json() == {"code": "grant.revoked", "message": "登录已退出，授权凭证已失效", "detail": {}}
        assert response["Content-Type"].startswith("application/json") and b"ftyp" not in response.content
        # The other session's URL: it stays with a logout of this one and with a password change
        # made in it; an administrator's revoke ends every session of the user.
        kept = other.client.get(kept_url, HTTP_RANGE="bytes=0-99")
        if how == "admin_revoke":
            assert kept.status_code == 403 and kept.json()["code"] == "grant.revoked"
        else:
            assert kept.status_code == 206 and len(b"".join(kept.streaming_content)) == 100


# --- the node's memory of ended sessions is bounded ---------------------------------------


def test_the_nodes_revoked_sessions_are_bounded_and_expire() -> None:
    from media_engine.room import REVOKE_MAX_SECONDS, RevokedSessions

    revoked = RevokedSessions(max_entries=3)
    now = 1_000_000.0
    for i, left in enumerate((30.0, 10.0, 20.0)):
        revoked.revoke(f"s{i}", now + left, now=now)
    assert all(revoked.is_revoked(f"s{i}", now=now) for i in range(3))
    assert not revoked.is_revoked("other", now=now) and not revoked.is_revoked("", now=now)
    # Full: a new sid makes room by dropping the one that runs out first (s1), never grows.
    revoked.revoke("s3", now + 40, now=now)
    assert len(revoked) == 3 and not revoked.is_revoked("s1", now=now) and revoked.is_revoked("s3", now=now)
    # Past its time a sid is admitted again (its grants have all expired by then) and forgotten.
    assert not revoked.is_revoked("s2", now=now + 21) and len(revoked) == 2
    # Whatever a command asks, a sid is kept at most REVOKE_MAX_SECONDS.
    revoked.revoke("long", now + 10 * REVOKE_MAX_SECONDS, now=now)
    assert revoked.is_revoked("long", now=now + REVOKE_MAX_SECONDS - 1)
    assert not revoked.is_revoked("long", now=now + REVOKE_MAX_SECONDS + 1)

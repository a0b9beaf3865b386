"""Video room: the patient joins through the H5 page in Chromium (fake camera and
microphone) and plays the doctor, an aiortc publisher in this process; the doctor
receives the patient's camera back over WHEP."""

from __future__ import annotations

import asyncio
import json
import random
import threading
import urllib.error
import urllib.request
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from playwright.sync_api import expect

from apps.accounts.roles import Role
from apps.accounts.services import token_issue
from apps.im.services import conversation_for_pair
from media_engine.client import PublisherClient, SubscriberClient, publish_clips, subscribe
from media_engine.synthetic import encode_h264, encode_opus
from tests.conftest import make_patient, make_staff
from tests.e2e.helpers import patient_login

pytestmark = pytest.mark.e2e

T = TypeVar("T")
REMOTE = "document.querySelector('[data-testid=remote-video]')"
LOCAL = "document.querySelector('[data-testid=local-video]')"


class Loop:
    """An asyncio loop in a thread for the aiortc side (Playwright's sync API owns this one)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def http(url: str, *, token: str, body: bytes, content_type: str) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Authorization": f"Bearer {token}", "Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def sdp_signal(base: str, path: str, token: str) -> Any:
    async def post(sdp: str) -> str:
        status, body = await asyncio.to_thread(
            http, base + path, token=token, body=sdp.encode(), content_type="application/sdp"
        )
        assert status == 201, (status, body)
        return body.decode()

    return post


def video_room(live_server_url: str, doctor_username: str, phone_prefix: str, name: str) -> tuple[str, str, Any]:
    """A doctor and a patient with their conversation's video room; the doctor's side
    asks the hub for a room grant like any client. Returns (patient phone, room, grant)."""
    doctor = make_staff(Role.DOCTOR, doctor_username)
    phone = f"{phone_prefix}{random.randint(0, 99_999_999):08d}"
    patient = make_patient(phone, name)
    room = f"conv-{conversation_for_pair(staff=doctor.user, patient=patient.user).pk}"
    status, body = http(
        f"{live_server_url}/api/v1/media/rooms/{room}/grant",
        token=token_issue(user=doctor.user).raw,
        body=b"{}",
        content_type="application/json",
    )
    assert status == 200, body
    return phone, room, json.loads(body)


def test_patient_h5_video_room_plays_the_doctor_and_publishes_the_camera(live_server_url: str, page: Any) -> None:
    phone, room, grant = video_room(live_server_url, "videodoc", "135", "李四")
    video, audio = encode_h264(width=320, height=240, seconds=2.0, gop_frames=30), encode_opus(seconds=2.0)
    loop = Loop()
    pub: PublisherClient | None = None
    sub: SubscriberClient | None = None
    try:
        pub = loop.run(publish_clips(sdp_signal(live_server_url, grant["whip_url"], grant["token"]), video, audio))

        patient_login(page, live_server_url, phone)
        page.goto(f"{live_server_url}/h5/#/pages/video/room?room={room}")
        expect(page.locator("[data-testid=video-status]")).to_have_text("通话中", timeout=20_000)
        # The doctor's picture really plays: decoded size known and the clock advancing.
        page.wait_for_function(f"() => {REMOTE}.videoWidth > 0 && {REMOTE}.currentTime > 0", timeout=15_000)
        assert page.evaluate(f"[{REMOTE}.videoWidth, {REMOTE}.videoHeight]") == [320, 240]
        t0 = page.evaluate(f"{REMOTE}.currentTime")
        page.wait_for_function(f"() => {REMOTE}.currentTime > {t0} + 1.0", timeout=10_000)
        assert page.evaluate(f"{REMOTE}.paused") is False
        # The patient's own camera preview plays too.
        page.wait_for_function(f"() => {LOCAL} && {LOCAL}.videoWidth > 0", timeout=10_000)

        # The doctor receives the patient's camera over WHEP (never their own publication).
        sub = loop.run(subscribe(sdp_signal(live_server_url, grant["whep_url"], grant["token"])))
        got = loop.run(sub.wait_count("video", 30, timeout=20), timeout=30)
        assert got.first_is_keyframe is True
        loop.run(sub.wait_count("audio", 20, timeout=10), timeout=20)
        assert page.errors == []

        # Someone else's room: refused, with the reason shown.
        page.goto(f"{live_server_url}/h5/#/pages/video/room?room=conv-999999999")
        page.reload()  # a fresh page: the hash change alone keeps the mounted room page
        expect(page.locator("[data-testid=video-error]")).to_contain_text("不是该会话成员")
    finally:
        for client in (sub, pub):
            if client is not None:
                loop.run(client.close())
        loop.close()

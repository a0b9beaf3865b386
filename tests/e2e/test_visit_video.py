"""A video visit between the two clients (issue 13): the doctor's console component
(``frontend/console/src/components/video/VisitVideo.vue``, at ``#/video/<room>``) and the
patient's H5 component (``frontend/patient/src/components/video/VisitVideo.vue`` in
``pages/video/room``) in one room, Chromium with fake cameras and microphones: each plays
the other's picture and sound, and the patient sees the doctor leave."""

from __future__ import annotations

import json
import random
import re
from typing import Any

import pytest
from playwright.sync_api import expect

from apps.accounts.roles import Role
from apps.accounts.services import token_issue
from apps.im.services import conversation_for_pair
from media_engine.client import publish_clips, subscribe
from media_engine.synthetic import encode_h264, encode_opus
from tests.conftest import make_patient, make_staff
from tests.e2e.conftest import _screenshots
from tests.e2e.helpers import console_login, patient_login
from tests.e2e.test_media_room import Loop, http, sdp_signal

pytestmark = pytest.mark.e2e

P_REMOTE = "document.querySelector('[data-testid=remote-video]')"
P_AUDIO = "document.querySelector('[data-testid=remote-audio]')"
C_REMOTE = "document.querySelector('[data-testid=console-remote-video]')"
C_AUDIO = "document.querySelector('[data-testid=console-remote-audio]')"


def plays(page: Any, video: str, audio: str) -> None:
    """The other side's picture decodes and advances, and its sound track is live."""
    page.wait_for_function(f"() => {video}.videoWidth > 0 && {video}.currentTime > 0", timeout=20_000)
    t0 = page.evaluate(f"{video}.currentTime")
    page.wait_for_function(f"() => {video}.currentTime > {t0} + 1.0", timeout=10_000)
    assert page.evaluate(f"{video}.paused") is False
    page.wait_for_function(
        f"() => {audio}.srcObject && {audio}.srcObject.getAudioTracks().some(t => t.readyState === 'live')",
        timeout=10_000,
    )


def test_console_and_h5_components_see_and_hear_each_other(
    live_server_url: str, patient_page: Any, console_page: Any
) -> None:
    url, page, doc = live_server_url, patient_page, console_page
    doctor = make_staff(Role.DOCTOR, "vvdoc")
    phone = f"136{random.randint(0, 99_999_999):08d}"
    patient = make_patient(phone, "王五")
    room = f"conv-{conversation_for_pair(staff=doctor.user, patient=patient.user).pk}"

    # The doctor opens the room first: camera preview, waiting for the patient.
    console_login(doc, url, "vvdoc", doctor)
    doc.goto(f"{url}/console/#/video/{room}")
    expect(doc.locator("[data-testid=console-video-status]")).to_have_text("等待中", timeout=20_000)
    expect(doc.locator("[data-testid=console-video-waiting]")).to_contain_text("等待患者进入视频")
    doc.wait_for_function(
        "() => document.querySelector('[data-testid=console-local-video]').videoWidth > 0", timeout=15_000
    )
    _screenshots.shoot(doc, "visit-doctor-waiting-")

    # The patient joins from the phone (390x844): both are in the call.
    patient_login(page, url, phone)
    page.goto(f"{url}/h5/#/pages/video/room?room={room}")
    expect(page.locator("[data-testid=video-status]")).to_have_text("通话中", timeout=30_000)
    expect(doc.locator("[data-testid=console-video-status]")).to_have_text("通话中", timeout=30_000)
    plays(page, P_REMOTE, P_AUDIO)  # the patient sees and hears the doctor
    plays(doc, C_REMOTE, C_AUDIO)  # the doctor sees and hears the patient
    page.wait_for_function("() => document.querySelector('[data-testid=local-video]').videoWidth > 0", timeout=10_000)
    expect(page.locator("[data-testid=video-duration]")).to_have_text(re.compile(r"^\d\d:\d\d$"))
    _screenshots.shoot(page, "visit-patient-incall-")
    _screenshots.shoot(doc, "visit-doctor-incall-")

    # Mute and camera toggles on the console.
    doc.click("[data-testid=console-toggle-mic]")
    expect(doc.locator("[data-testid=console-toggle-mic]")).to_have_text("取消静音")
    doc.click("[data-testid=console-toggle-camera]")
    expect(doc.locator("[data-testid=console-toggle-camera]")).to_have_text("开启摄像头")
    doc.click("[data-testid=console-toggle-camera]")
    doc.click("[data-testid=console-toggle-mic]")

    # The doctor ends the video: the patient is told and waits for them to come back.
    doc.click("[data-testid=console-hangup]")
    expect(doc.locator("[data-testid=console-video-ended]")).to_be_visible()
    expect(page.locator("[data-testid=video-status]")).to_have_text("等待中", timeout=20_000)
    expect(page.locator("[data-testid=video-waiting]")).to_contain_text("对方已离开或网络中断")
    _screenshots.shoot(page, "visit-patient-doctor-left-")
    assert page.errors == [] and doc.errors == []


def test_alipay_web_view_page_enters_with_a_one_time_pass(live_server_url: str, patient_page: Any) -> None:
    """What the Alipay mini-program opens in its web-view: the H5 video page with a pass
    and no login; it plays the doctor (an aiortc publisher here) and publishes the camera,
    and the same address does not work twice."""
    url, page = live_server_url, patient_page
    doctor = make_staff(Role.DOCTOR, "vvpassdoc")
    patient = make_patient(f"137{random.randint(0, 99_999_999):08d}", "赵六")
    room = f"conv-{conversation_for_pair(staff=doctor.user, patient=patient.user).pk}"
    status, body = http(
        f"{url}/api/v1/media/rooms/{room}/grant",
        token=token_issue(user=doctor.user).raw,
        body=b"{}",
        content_type="application/json",
    )
    assert status == 200, body
    grant = json.loads(body)
    token = token_issue(user=patient.user).raw
    status, body = http(
        f"{url}/api/v1/media/rooms/{room}/pass", token=token, body=b"{}", content_type="application/json"
    )
    assert status == 200, body
    address = url + json.loads(body)["page"]
    loop = Loop()
    pub = sub = None
    try:
        video, audio = encode_h264(width=320, height=240, seconds=2.0, gop_frames=30), encode_opus(seconds=2.0)
        pub = loop.run(publish_clips(sdp_signal(url, grant["whip_url"], grant["token"]), video, audio))
        page.goto(address)  # a web-view: no login in this browser context
        expect(page.locator("[data-testid=video-status]")).to_have_text("通话中", timeout=30_000)
        plays(page, P_REMOTE, P_AUDIO)
        assert page.evaluate(f"[{P_REMOTE}.videoWidth, {P_REMOTE}.videoHeight]") == [320, 240]
        assert "pass=" not in page.url  # spent and dropped from the address
        expect(page.locator("[data-testid=recording-consent]")).to_have_count(0)
        # The doctor receives the patient's camera from the web-view.
        sub = loop.run(subscribe(sdp_signal(url, grant["whep_url"], grant["token"])))
        loop.run(sub.wait_count("video", 30, timeout=20), timeout=30)
        _screenshots.shoot(page, "visit-webview-incall-")

        # The same address again (a forwarded link, the history): refused, nothing plays.
        page.goto("about:blank")
        page.goto(address)
        expect(page.locator("[data-testid=video-error]")).to_contain_text("视频入口已失效", timeout=15_000)
        expect(page.locator("[data-testid=video-retry]")).to_have_count(0)  # retrying cannot help
        _screenshots.shoot(page, "visit-webview-spent-")
    finally:
        for client in (sub, pub):
            if client is not None:
                loop.run(client.close())
        loop.close()

"""Chromium: recording consent in the patient's video room (390x844) and the doctor's
recording control in the console chat (issue 11, finding 1).

The patient sees whether they agreed to recording and grants or withdraws it in the
room; the doctor's 开始录制 is refused with a clear message until they agree; a
withdrawal mid-session stops the recording and the console says so. Screenshots to
/tmp/recording-consent-*.png."""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.sync_api import expect

from apps.accounts.models import ConsentRecord
from apps.accounts.roles import Role
from apps.accounts.services import token_issue
from apps.im.services import conversation_for_pair
from apps.media.grants import room_grant
from media_engine.client import PublisherClient, publish_clips
from media_engine.synthetic import encode_h264, encode_opus
from recordings.models import Recording
from tests.conftest import make_patient, make_staff
from tests.e2e.helpers import CONSOLE_DESKTOP, console_login, patient_login
from tests.e2e.test_media_room import Loop, http, sdp_signal

pytestmark = pytest.mark.e2e

STATE = "[data-testid=recording-consent-state]"
TOGGLE = "[data-testid=recording-consent-toggle]"


def latest_consent(user: Any) -> bool | None:
    record = ConsentRecord.objects.filter(user=user, purpose="recording").order_by("-at", "-id").first()
    return None if record is None else record.granted


def consent(base: str, token: str, *, granted: bool) -> None:
    body = json.dumps({"purpose": "recording", "granted": granted}).encode()
    status, answer = http(f"{base}/api/v1/accounts/consents", token=token, body=body, content_type="application/json")
    assert status == 200 and json.loads(answer)["granted"] is granted, answer


def test_patient_grants_and_withdraws_recording_consent_in_the_video_room(
    live_server_url: str, patient_page: Any
) -> None:
    page = patient_page
    doctor = make_staff(Role.DOCTOR, "consentuidoc")
    phone = "13612349922"
    patient_user = make_patient(phone, "周七").user
    room = f"conv-{conversation_for_pair(staff=doctor.user, patient=patient_user).pk}"
    patient_login(page, live_server_url, phone)
    page.goto(f"{live_server_url}/h5/#/pages/video/room?room={room}")
    page.reload()  # a fresh document: no login toast over the screenshot

    control = page.locator("[data-testid=recording-consent]")
    expect(control).to_be_visible()
    expect(page.locator(STATE)).to_have_text("您未同意录音录像，医生无法录制")
    expect(page.locator("[data-testid=recording-consent-hint]")).to_contain_text("不同意不影响视频问诊")
    expect(page.locator(TOGGLE)).to_have_text("同意录制")
    # The bar sits above the call controls, inside the phone's width.
    bar, controls = control.bounding_box(), page.locator("[data-testid=video-controls]").bounding_box()
    assert bar and controls and bar["y"] + bar["height"] <= controls["y"] + 1 and bar["width"] <= 390
    page.screenshot(path="/tmp/recording-consent-not-granted.png")

    page.click(TOGGLE)
    expect(page.locator(STATE)).to_have_text("您已同意本次问诊录音录像")
    expect(page.locator(TOGGLE)).to_have_text("撤回同意")
    assert latest_consent(patient_user) is True
    expect(page.locator(".uni-toast")).to_be_hidden(timeout=5000)
    page.screenshot(path="/tmp/recording-consent-granted.png")

    page.click(TOGGLE)
    expect(page.locator(STATE)).to_have_text("您未同意录音录像，医生无法录制")
    assert latest_consent(patient_user) is False
    # Reopened, the room shows the consent in force.
    page.reload()
    expect(page.locator(STATE)).to_have_text("您未同意录音录像，医生无法录制")
    assert page.errors == []


def test_console_recording_is_refused_without_consent_and_stops_when_withdrawn(
    live_server_url: str, browser: Any
) -> None:
    doctor = make_staff(Role.DOCTOR, "consentrecdoc")
    phone = "13612349911"
    patient = make_patient(phone, "吴八")
    conversation = conversation_for_pair(staff=doctor.user, patient=patient.user)
    room = f"conv-{conversation.pk}"
    patient_token = token_issue(user=patient.user).raw

    console = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", **CONSOLE_DESKTOP)
    loop = Loop()
    pub: PublisherClient | None = None
    try:
        doc = console.new_page()
        console_login(doc, live_server_url, "consentrecdoc", doctor)
        doc.goto(f"{live_server_url}/console/#/im?c={conversation.pk}")
        control = doc.locator("[data-testid=recording-control]")
        expect(control).to_be_visible()
        expect(doc.locator("[data-testid=recording-control-state]")).to_have_text("未录制")
        doc.click("[data-testid=recording-start]")
        refusal = doc.locator("[data-testid=recording-control-error]")
        expect(refusal).to_contain_text("患者尚未同意音视频录制")
        expect(refusal).to_contain_text("同意录制")
        control.screenshot(path="/tmp/recording-consent-console-refused.png")
        assert Recording.objects.filter(room_id=room).count() == 0

        # The patient publishes into the room (the doctor's picture would be the same) and agrees.
        video, audio = encode_h264(width=320, height=240, seconds=2.0, gop_frames=30), encode_opus(seconds=2.0)
        token = room_grant(
            room_id=room,
            peer_id=f"u{patient.user.pk}",
            role="patient",
            publish=True,
            subscribe=True,
            sid=token_issue(user=patient.user).token.pk,
        )
        pub = loop.run(publish_clips(sdp_signal(live_server_url, f"/media/whip/{room}", token), video, audio))
        # The patient agrees (their room's 同意录制 posts this; that page is driven in the test above).
        consent(live_server_url, patient_token, granted=True)
        doc.click("[data-testid=recording-start]")
        expect(doc.locator("[data-testid=recording-control-state]")).to_have_text("录制中", timeout=15_000)
        expect(refusal).to_have_count(0)
        assert Recording.objects.filter(room_id=room, status=Recording.Status.RECORDING).count() == 1
        doc.wait_for_timeout(1000)

        # Withdrawn mid-session: stopped at once, and the doctor is told.
        consent(live_server_url, patient_token, granted=False)
        expect(doc.locator("[data-testid=recording-control-state]")).to_have_text("未录制", timeout=15_000)
        expect(refusal).to_contain_text("患者已撤回录制同意，录制已停止")
        control.screenshot(path="/tmp/recording-consent-console-withdrawn.png")
        row = Recording.objects.get(room_id=room)
        assert row.status == Recording.Status.COMPLETE
    finally:
        if pub is not None:
            loop.run(pub.close())
        loop.close()
        console.close()

"""The patient's video room at 390x844: entered from the chat, one state at a time
(waiting, in call, ended, failed with a reason and 重试), the local preview a small
corner tile, the controls one aligned row. Screenshots to /tmp/ui-video-*.png."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from media_engine.client import PublisherClient, publish_clips
from media_engine.synthetic import encode_h264, encode_opus
from tests.e2e.helpers import patient_login
from tests.e2e.test_media_room import LOCAL, REMOTE, Loop, sdp_signal, video_room

pytestmark = pytest.mark.e2e

OVERLAYS = ("video-connecting", "video-waiting", "video-failed", "video-ended")
W, H = 390, 844


@pytest.fixture
def phone_page(browser: Any) -> Any:
    context = browser.new_context(
        locale="zh-CN", timezone_id="Asia/Shanghai", viewport={"width": W, "height": H}, is_mobile=True, has_touch=True
    )
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.errors = errors
    yield pg
    context.close()


def only_overlay(page: Any, shown: str | None) -> None:
    for name in OVERLAYS:
        expect(page.locator(f"[data-testid={name}]")).to_have_count(1 if name == shown else 0)


def box(page: Any, selector: str) -> dict[str, float]:
    b = page.locator(selector).first.bounding_box()
    assert b is not None, selector
    return b


def test_video_room_layout_and_states(live_server_url: str, phone_page: Any) -> None:
    page = phone_page
    phone, room, grant = video_room(live_server_url, "uivideodoc", "137", "赵六")
    conversation_id = room.removeprefix("conv-")
    loop = Loop()
    pub: PublisherClient | None = None
    try:
        patient_login(page, live_server_url, phone)
        expect(page.locator(".uni-toast")).to_be_hidden(timeout=5000)  # the login toast gone before the screenshots

        # The chat of the consultation links to its video room.
        page.goto(f"{live_server_url}/h5/#/pages/im/chat?id={conversation_id}")
        entry = page.locator("[data-testid=video-entry]")
        expect(entry).to_be_visible()
        expect(entry).to_contain_text("进入视频")
        page.screenshot(path="/tmp/ui-video-chat-entry.png")
        page.click("[data-testid=video-enter]")
        expect(page).to_have_url(f"{live_server_url}/h5/#/pages/video/room?room={room}")
        page.reload()  # a fresh document: the login page's toast does not come back over the screenshots

        # Waiting for the doctor: one message, the own camera in a small corner tile.
        expect(page.locator("[data-testid=video-status]")).to_have_text("等待中", timeout=15_000)
        only_overlay(page, "video-waiting")
        page.wait_for_function(f"() => {LOCAL} && {LOCAL}.videoWidth > 0", timeout=15_000)
        local = box(page, "[data-testid=local-box]")
        assert local["width"] <= W * 0.3 and local["height"] <= H * 0.2, local
        assert local["x"] + local["width"] <= W and local["x"] > W / 2, local
        inner = box(page, "[data-testid=local-video]")  # the preview fills its tile, no more
        assert abs(inner["width"] - local["width"]) < 3 and abs(inner["height"] - local["height"]) < 3, inner
        # Four controls in one row, each icon centred over its label.
        controls = ["toggle-mic", "toggle-camera", "switch-camera", "hangup"]
        circles = [box(page, f"[data-testid={c}] .ctl-circle") for c in controls]
        labels = [box(page, f"[data-testid={c}] .ctl-text") for c in controls]
        assert max(c["y"] for c in circles) - min(c["y"] for c in circles) < 1
        assert max(t["y"] for t in labels) - min(t["y"] for t in labels) < 1
        for c, t in zip(circles, labels, strict=True):
            assert abs((c["x"] + c["width"] / 2) - (t["x"] + t["width"] / 2)) < 1.5
            assert t["y"] >= c["y"] + c["height"]
        assert circles[-1]["x"] + circles[-1]["width"] <= W
        expect(page.locator("[data-testid=toggle-mic]")).to_contain_text("静音")
        expect(page.locator("[data-testid=switch-camera]")).to_contain_text("切换")
        page.screenshot(path="/tmp/ui-video-waiting.png")

        # The doctor joins: in call, nothing over the picture, the remote video large.
        video, audio = encode_h264(width=320, height=240, seconds=2.0, gop_frames=30), encode_opus(seconds=2.0)
        pub = loop.run(publish_clips(sdp_signal(live_server_url, grant["whip_url"], grant["token"]), video, audio))
        expect(page.locator("[data-testid=video-status]")).to_have_text("通话中", timeout=20_000)
        only_overlay(page, None)
        page.wait_for_function(f"() => {REMOTE}.videoWidth > 0 && {REMOTE}.currentTime > 0.5", timeout=15_000)
        remote = box(page, "[data-testid=remote-box]")
        assert remote["width"] == W and remote["height"] > H * 0.6, remote
        picture = box(page, "[data-testid=remote-video]")
        assert picture["width"] == remote["width"] and picture["height"] == remote["height"], picture
        expect(page.locator("[data-testid=video-duration]")).to_have_text(re.compile(r"^\d\d:\d\d$"))

        # Mute and camera off act on the tracks and say what a tap will do next.
        page.click("[data-testid=toggle-mic]")
        expect(page.locator("[data-testid=toggle-mic]")).to_contain_text("取消静音")
        assert page.evaluate(f"{LOCAL}.srcObject.getAudioTracks().every((t) => !t.enabled)") is True
        page.click("[data-testid=toggle-camera]")
        expect(page.locator("[data-testid=toggle-camera]")).to_contain_text("开启摄像头")
        assert page.evaluate(f"{LOCAL}.srcObject.getVideoTracks().every((t) => !t.enabled)") is True
        page.click("[data-testid=toggle-camera]")
        page.click("[data-testid=toggle-mic]")
        page.wait_for_timeout(300)
        page.screenshot(path="/tmp/ui-video-incall.png")

        # Hang up: ended, with a way back in.
        page.click("[data-testid=hangup]")
        expect(page.locator("[data-testid=video-status]")).to_have_text("已挂断")
        only_overlay(page, "video-ended")
        expect(page.locator("[data-testid=video-rejoin]")).to_be_visible()
        page.screenshot(path="/tmp/ui-video-ended.png")

        # A room that is not the patient's: failed, the reason and 重试, nothing else.
        page.goto(f"{live_server_url}/h5/#/pages/video/room?room=conv-999999999")
        page.reload()
        expect(page.locator("[data-testid=video-error]")).to_contain_text("不是该会话成员")
        only_overlay(page, "video-failed")
        expect(page.locator("[data-testid=video-retry]")).to_have_text("重试")
        page.screenshot(path="/tmp/ui-video-failed.png")
        page.click("[data-testid=video-retry]")
        expect(page.locator("[data-testid=video-error]")).to_contain_text("不是该会话成员")
        assert page.errors == []
    finally:
        if pub is not None:
            loop.run(pub.close())
        loop.close()

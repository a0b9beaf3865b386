"""A browser tab that dies mid-visit: its renderer crashes (nothing is sent, as when
a phone kills the page), the patient opens the room again and publishes at once, and
the doctor's player, still the same connection, gets the patient's camera back."""

from __future__ import annotations

import time
from typing import Any

import psutil
import pytest
from playwright.sync_api import expect

from media_engine.client import SubscriberClient, subscribe
from tests.e2e.helpers import patient_login
from tests.e2e.test_media_room import LOCAL, Loop, sdp_signal, video_room

pytestmark = pytest.mark.e2e


def test_crashed_tab_republishes_and_the_doctor_keeps_playing(live_server_url: str, page: Any) -> None:
    phone, room, grant = video_room(live_server_url, "crashdoc", "136", "王五")
    loop = Loop()
    sub: SubscriberClient | None = None
    try:
        patient_login(page, live_server_url, phone)
        page.goto(f"{live_server_url}/h5/#/pages/video/room?room={room}")
        page.wait_for_function(f"() => {LOCAL} && {LOCAL}.videoWidth > 0", timeout=15_000)
        # The doctor plays the patient's camera (WHEP waits for the publisher).
        sub = loop.run(subscribe(sdp_signal(live_server_url, grant["whep_url"], grant["token"])))
        loop.run(sub.wait_count("video", 30, timeout=20), timeout=30)
        pc = sub.pc

        # The renderer dies: no DTLS close, no DELETE, no goodbye of any kind.
        crashed_at = time.monotonic()
        # (The tab's renderer process is SIGKILLed, as a phone's OS kills a backgrounded page.)
        renderers = [p for p in psutil.Process().children(recursive=True) if "--type=renderer" in " ".join(p.cmdline())]
        assert renderers, "no Chromium renderer found"
        for renderer in renderers:
            renderer.kill()
        with pytest.raises(Exception, match="crashed"):
            page.evaluate("1")
        time.sleep(1.0)
        frames_after_crash = sub.received["video"].count
        time.sleep(1.0)
        assert sub.received["video"].count == frames_after_crash, "frames still arrive from a crashed tab"

        # The patient opens the room again at once: the new publication replaces the dead one.
        again = page.context.new_page()
        again.goto(f"{live_server_url}/h5/#/pages/video/room?room={room}")
        again.wait_for_function(f"() => {LOCAL} && {LOCAL}.videoWidth > 0", timeout=15_000)
        expect(again.locator("[data-testid=video-error]")).to_have_count(0)
        loop.run(sub.wait_count("video", frames_after_crash + 30, timeout=20), timeout=30)
        resumed_after = time.monotonic() - crashed_at
        # Same peer connection: no new offer, no renegotiation on the doctor's side.
        assert sub.pc is pc and pc.connectionState == "connected"
        assert resumed_after < 20, resumed_after
        again.close()
    finally:
        if sub is not None:
            loop.run(sub.close())
        loop.close()

"""Console replay: a doctor who took part finds the session and plays it in a <video>
through the expiring signed MP4 URL; the replay is audited; others do not see it."""

from __future__ import annotations

import fractions
import uuid
from pathlib import Path
from typing import Any

import av
import pytest
from django.conf import settings
from playwright.sync_api import expect

from apps.accounts.roles import Role
from apps.audit.models import AuditEvent
from media_engine.recording import MP4_OPTIONS
from media_engine.synthetic import encode_h264
from recordings.services import recording_recover, recording_start
from tests.conftest import make_staff
from tests.e2e.helpers import console_login

pytestmark = pytest.mark.e2e

PLAYER = "document.querySelector('[data-testid=replay-video]')"


def write_mp4(path: Path, seconds: float) -> None:
    clip = encode_h264(width=320, height=240, seconds=seconds, gop_frames=15)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4", options=MP4_OPTIONS) as out:
        stream = out.add_mux_stream("h264", width=320, height=240, time_base=fractions.Fraction(1, 90000))
        for i, sample in enumerate(clip.samples):
            packet = av.Packet(sample.data)
            packet.pts = packet.dts = i * 3000
            packet.time_base = fractions.Fraction(1, 90000)
            packet.stream = stream
            packet.is_keyframe = sample.keyframe
            out.mux(packet)


def test_doctor_replays_a_session_in_the_console(live_server_url: str, page: Any) -> None:
    doctor = make_staff(Role.DOCTOR, "replaydoc")
    other = make_staff(Role.DOCTOR, "otherdoc")
    room = f"conv-e2e{uuid.uuid4().hex[:8]}"
    storage_path = f"{room}/{uuid.uuid4()}.mp4"
    write_mp4(Path(settings.RECORDINGS_ROOT) / storage_path, seconds=4.0)
    recording = recording_recover(
        recording=recording_start(room_id=room, storage_path=storage_path, participants=[doctor.user])
    )

    console_login(page, live_server_url, "replaydoc", doctor)
    page.click("[data-testid=menu-recordings]")
    page.fill("[data-testid=recordings-room]", room)
    page.click("[data-testid=recordings-query]")
    rows = page.locator("[data-testid=recordings-table] .el-table__body tr")
    expect(rows).to_have_count(1)
    expect(rows.first.locator("[data-testid=recording-room]")).to_have_text(room)
    expect(rows.first.locator("[data-testid=recording-status]")).to_have_text("已恢复")
    rows.first.locator("[data-testid=recording-replay]").click()

    # The <video> really plays the signed MP4 (range requests to /media/recordings/...).
    page.wait_for_function(f"() => {PLAYER} && {PLAYER}.videoWidth > 0", timeout=15_000)
    assert page.evaluate(f"[{PLAYER}.videoWidth, {PLAYER}.videoHeight]") == [320, 240]
    src = page.evaluate(f"{PLAYER}.currentSrc")
    assert f"/media/recordings/{recording.public_id}.mp4?grant=" in src
    t0 = page.evaluate(f"{PLAYER}.currentTime")
    page.wait_for_function(f"() => {PLAYER}.currentTime > {t0} + 0.5", timeout=10_000)
    assert page.locator("[data-testid=replay-integrity-bad]").count() == 0
    replays = AuditEvent.objects.filter(action="recording.replay", object_id=str(recording.public_id))
    assert [(e.actor_username, e.result) for e in replays] == [("replaydoc", AuditEvent.Result.OK)]
    # Without the grant the same file is refused.
    status = page.evaluate(f"fetch('/media/recordings/{recording.public_id}.mp4').then(r => r.status)")
    assert status == 403
    assert page.errors == []
    # A doctor who did not take part neither finds it nor gets a replay URL.
    assert other.api().get("/recordings/", room_id=room).json()["count"] == 0
    assert other.api().post(f"/recordings/{recording.public_id}/replay").status_code == 403

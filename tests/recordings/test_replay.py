"""Replay: only participating clinical staff, through expiring signed URLs, always audited."""

from __future__ import annotations

import datetime as dt
import fractions
import time
from pathlib import Path
from typing import Any

import av
import pytest
from django.test import override_settings

from apps.accounts.roles import Role
from apps.audit.models import AuditEvent
from apps.core.lifecycle import AuditEntry, TransitionRefused
from apps.core.models import TransitionEvent
from hub.crypto import grant_key
from media_engine.grants import sign_grant
from media_engine.recording import MP4_OPTIONS, recover_manifest
from media_engine.synthetic import encode_h264
from recordings.errors import ManifestInvalid
from recordings.models import Recording
from recordings.services import (
    recording_file,
    recording_finish,
    recording_recover,
    recording_start,
    recordings_purge_expired,
)
from recordings.storage import manifest_key
from tests.conftest import Api, Persona, make_staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def storage(tmp_path: Path) -> Any:
    with override_settings(RECORDINGS_ROOT=tmp_path):
        yield tmp_path


def write_mp4(path: Path) -> None:
    clip = encode_h264(seconds=1.0, gop_frames=15)
    with av.open(str(path), "w", format="mp4", options=MP4_OPTIONS) as out:
        stream = out.add_mux_stream("h264", width=320, height=240, time_base=fractions.Fraction(1, 90000))
        for i, sample in enumerate(clip.samples):
            packet = av.Packet(sample.data)
            packet.pts = packet.dts = i * 3000
            packet.time_base = fractions.Fraction(1, 90000)
            packet.stream = stream
            packet.is_keyframe = sample.keyframe
            out.mux(packet)


@pytest.fixture
def recording(storage: Path, doctor: Persona) -> Recording:
    (storage / "room-1").mkdir()
    write_mp4(storage / "room-1" / "a.mp4")
    rec = recording_start(room_id="room-1", storage_path="room-1/a.mp4", participants=[doctor.user])
    return recording_recover(recording=rec)


def replay_audits(rec: Recording, result: str = "ok") -> int:
    return AuditEvent.objects.filter(action="recording.replay", object_id=str(rec.public_id), result=result).count()


def test_replay_url_with_grant_serves_ranges_and_is_audited(
    recording: Recording, doctor: Persona, storage: Path
) -> None:
    api = doctor.api()
    response = api.post(f"/recordings/{recording.public_id}/replay")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["integrity_ok"] is True
    assert replay_audits(recording) == 1
    event = AuditEvent.objects.get(action="recording.replay", object_id=str(recording.public_id))
    assert event.actor_id == doctor.user.id and event.actor_role == Role.DOCTOR

    data = (storage / "room-1" / "a.mp4").read_bytes()
    part = api.client.get(body["url"], HTTP_RANGE="bytes=100-1099")
    assert part.status_code == 206
    assert part["Content-Range"] == f"bytes 100-1099/{len(data)}"
    assert b"".join(part.streaming_content) == data[100:1100]
    tail = api.client.get(body["url"], HTTP_RANGE="bytes=-500")
    assert b"".join(tail.streaming_content) == data[-500:]
    whole = api.client.get(body["url"])
    assert whole.status_code == 200 and whole["Accept-Ranges"] == "bytes"
    assert b"".join(whole.streaming_content) == data
    assert api.client.get(body["url"], HTTP_RANGE=f"bytes={len(data)}-").status_code == 416


def test_file_refused_without_a_valid_grant(recording: Recording, doctor: Persona) -> None:
    client = Api().client
    base = f"/media/recordings/{recording.public_id}.mp4"
    assert client.get(base).status_code == 403
    assert client.get(base + "?grant=abc.def").status_code == 403
    forged = sign_grant({"purpose": "replay", "rec": str(recording.public_id), "uid": 1}, key=b"x" * 32, ttl_seconds=60)
    assert client.get(f"{base}?grant={forged}").json()["code"] == "grant.invalid"
    expired = sign_grant(
        {"purpose": "replay", "rec": str(recording.public_id), "uid": 1},
        key=grant_key(),
        ttl_seconds=60,
        now=time.time() - 3600,
    )
    assert client.get(f"{base}?grant={expired}").json()["code"] == "grant.expired"
    other = sign_grant(
        {"purpose": "replay", "rec": "00000000-0000-0000-0000-000000000000", "uid": 1}, key=grant_key(), ttl_seconds=60
    )
    assert client.get(f"{base}?grant={other}").status_code == 403
    room_grant = sign_grant({"purpose": "room", "rec": str(recording.public_id)}, key=grant_key(), ttl_seconds=60)
    assert client.get(f"{base}?grant={room_grant}").status_code == 403
    assert replay_audits(recording) == 0


def test_non_participants_and_other_roles_get_no_grant(
    recording: Recording, auditor: Persona, patient: Persona
) -> None:
    other_doctor = make_staff(Role.DOCTOR, "doc2")
    response = other_doctor.api().post(f"/recordings/{recording.public_id}/replay")
    assert response.status_code == 403
    assert response.json()["code"] == "recording.replay_refused"
    assert replay_audits(recording, "denied") == 1
    assert replay_audits(recording) == 0
    for persona in (auditor, patient):
        assert persona.api().post(f"/recordings/{recording.public_id}/replay").status_code == 403
    # And it is not listed to them either.
    assert other_doctor.api().get("/recordings/").json()["count"] == 0


def test_participant_finds_own_recordings(recording: Recording, doctor: Persona) -> None:
    listing = doctor.api().get("/recordings/", room_id="room-1").json()
    assert [item["public_id"] for item in listing["items"]] == [str(recording.public_id)]
    assert listing["items"][0]["status"] == "recovered"


def test_tampered_file_is_refused(storage: Path, doctor: Persona) -> None:
    (storage / "r2").mkdir()
    write_mp4(storage / "r2" / "b.mp4")
    rec = recording_start(room_id="r2", storage_path="r2/b.mp4", participants=[doctor.user])
    manifest = recover_manifest(storage / "r2" / "b.mp4", manifest_key(), room="r2")
    with (storage / "r2" / "b.mp4").open("r+b") as f:
        f.seek(2000)
        f.write(b"\xff\xff")
    with pytest.raises(ManifestInvalid):
        recording_finish(recording=rec, manifest=manifest)
    rec.refresh_from_db()
    assert rec.status == Recording.Status.RECORDING


def test_retention_three_years_and_legal_hold(recording: Recording, secadmin: Persona, storage: Path) -> None:
    assert recording.retain_until >= (recording.started_at + dt.timedelta(days=3 * 365)).date()
    with override_settings(RECORDING_RETENTION_DAYS=30):
        short = recording_start(room_id="r3", storage_path="r3/c.mp4", participants=[])
    assert short.retain_until >= (short.started_at + dt.timedelta(days=3 * 365)).date()
    short.delete()

    day_after = recording.retain_until + dt.timedelta(days=1)
    assert recordings_purge_expired(today=recording.retain_until) == 0
    response = secadmin.api().post(
        f"/recordings/{recording.public_id}/legal-hold", {"hold": True, "reason": "医疗纠纷"}
    )
    assert response.status_code == 200 and response.json()["legal_hold"] is True
    assert recordings_purge_expired(today=day_after) == 0
    assert (storage / "room-1" / "a.mp4").exists()
    secadmin.api().post(f"/recordings/{recording.public_id}/legal-hold", {"hold": False})
    assert recordings_purge_expired(today=day_after) == 1
    assert not (storage / "room-1" / "a.mp4").exists()
    assert not Recording.objects.filter(id=recording.id).exists()
    assert AuditEvent.objects.filter(action="recording.purge").count() == 1
    assert AuditEvent.objects.filter(action="recording.legal_hold").count() == 1


def test_a_sealed_recording_is_not_sealed_again(recording: Recording, django_capture_on_commit_callbacks) -> None:
    """recording -> complete | recovered, once: a second seal is refused with its
    code and writes nothing (no event row, no audit record, nothing published)."""
    sealed = TransitionEvent.objects.get(object_type="recordings.recording", object_id=str(recording.pk))
    assert (sealed.action, sealed.from_status, sealed.to_status) == ("recover", "recording", "recovered")
    first = dict(recording.manifest)
    again = recover_manifest(recording_file(recording), manifest_key(), room=recording.room_id, note="second")
    events, audits = TransitionEvent.objects.count(), AuditEvent.objects.count()
    with django_capture_on_commit_callbacks() as published, pytest.raises(TransitionRefused) as refused:
        recording_finish(
            recording=Recording.objects.get(pk=recording.pk),
            manifest=again,
            audit=AuditEntry(action="recording.recovered", object_type="recording", object_id=recording.public_id),
        )
    assert refused.value.code == "recording.transition_refused"
    assert refused.value.message == "当前状态为“已恢复”，不能执行该操作"
    assert (TransitionEvent.objects.count(), AuditEvent.objects.count()) == (events, audits)
    assert published == []
    recording.refresh_from_db()
    assert recording.status == Recording.Status.RECOVERED and recording.manifest == first


def test_no_replay_url_for_a_recording_whose_file_no_longer_matches(
    recording: Recording, doctor: Persona, storage: Path
) -> None:
    """Issue 11, finding 12: the file changed after sealing -> 409, no URL, audited as refused."""
    path = storage / "room-1" / "a.mp4"
    with path.open("r+b") as f:
        f.seek(1500)
        f.write(b"\x00\xff\x00")
    response = doctor.api().post(f"/recordings/{recording.public_id}/replay")
    assert (response.status_code, response.json()["code"]) == (409, "recording.manifest_invalid")
    assert "url" not in response.json()
    assert replay_audits(recording, result="denied") == 1 and replay_audits(recording) == 0
    denied = AuditEvent.objects.get(action="recording.replay", object_id=str(recording.public_id))
    assert denied.detail == {"reason": "integrity"}

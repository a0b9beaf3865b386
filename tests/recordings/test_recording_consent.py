"""Recording needs every patient's current ``recording`` consent; withdrawing it stops the recording at once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient, override_settings

from apps.accounts.roles import Role
from apps.accounts.services import consent_set, token_issue
from apps.audit.models import AuditEvent
from apps.core.models import TransitionEvent
from apps.im.services import conversation_for_pair
from apps.media import control, embedded
from media_engine.client import publish_clips
from media_engine.synthetic import encode_h264, encode_opus
from recordings.models import Recording
from tests.conftest import make_patient, make_staff
from tests.recordings.test_embedded import api_post, whip_signal
from tests.support.socket_client import SocketClient

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

CODE = "media.recording_consent_missing"


@sync_to_async
def setup_room(*, consent: bool | None) -> tuple[str, Any, Any, str, str]:
    doctor = make_staff(Role.DOCTOR, "consentdoc")
    patient = make_patient("13911117777")
    conv = conversation_for_pair(staff=doctor.user, patient=patient.user)
    if consent is not None:
        # A grant first, then the latest record decides (the issue: withdrawn, then published).
        consent_set(user=patient.user, purpose="recording", granted=True)
        if not consent:
            consent_set(user=patient.user, purpose="recording", granted=False)
    return (
        f"conv-{conv.pk}",
        doctor.user,
        patient.user,
        token_issue(user=doctor.user).raw,
        token_issue(user=patient.user).raw,
    )


@sync_to_async
def written(room: str) -> dict[str, int]:
    return {
        "recordings": Recording.objects.filter(room_id=room).count(),
        "events": TransitionEvent.objects.filter(object_type="recordings.recording").count(),
        "audit": AuditEvent.objects.filter(action__in=["recording.start", "recording.stop"]).count(),
    }


@pytest.fixture
def node_commands(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every command the hub sends to a media node (still sent on)."""
    sent: list[str] = []
    real = control.send_command

    async def spy(node: str, cmd: str, room_id: str, **kwargs: Any) -> dict[str, Any]:
        sent.append(cmd)
        return await real(node, cmd, room_id, **kwargs)

    monkeypatch.setattr(control, "send_command", spy)
    return sent


@pytest.mark.parametrize("consent", [None, False], ids=["never_asked", "withdrawn"])
async def test_rest_start_is_refused_without_consent_and_writes_nothing(
    tmp_path: Path, node_commands: list[str], consent: bool | None
) -> None:
    with override_settings(MEDIA_EMBEDDED=True, MEDIA_NODE="embedded", RECORDINGS_ROOT=tmp_path):
        room, _doctor, patient, doctor_token, _ = await setup_room(consent=consent)
        before = await written(room)
        response = await api_post(AsyncClient(), doctor_token, f"/media/rooms/{room}/recording/start")
        assert response.status_code == 409, response.content
        body = response.json()
        assert body["code"] == CODE
        assert "患者尚未同意" in body["message"] and "录制" in body["message"]
        assert body["detail"]["patients"] == [patient.pk]
        assert await written(room) == before == {"recordings": 0, "events": 0, "audit": 0}
        assert node_commands == []


async def test_socket_start_is_refused_without_consent_and_writes_nothing(
    tmp_path: Path, node_commands: list[str]
) -> None:
    with override_settings(MEDIA_EMBEDDED=True, MEDIA_NODE="embedded", RECORDINGS_ROOT=tmp_path):
        room, doctor, patient, _, _ = await setup_room(consent=False)
        d = await SocketClient.for_user(doctor, timeout=20)
        p = await SocketClient.for_user(patient, timeout=20)
        try:
            refused = await d.request({"type": "media.record_start", "room": room})
            assert refused["type"] == "error" and refused["code"] == CODE, refused
            assert "患者尚未同意" in refused["message"]
            # A patient never controls recording, consent or not.
            assert (await p.request({"type": "media.record_start", "room": room}))["code"] == "forbidden"
            assert await written(room) == {"recordings": 0, "events": 0, "audit": 0}
            assert node_commands == []
        finally:
            await d.close()
            await p.close()
            await embedded.shutdown()


async def _wait_for_video(room: str, peer: str) -> None:
    source = embedded.engine().room(room).publishers[peer].sources["video"]
    for _ in range(500):
        if source.keyframes_in:
            return
        await asyncio.sleep(0.01)
    pytest.fail("no video reached the room")


async def test_grant_then_start_and_withdrawal_mid_session_stops_the_recording(tmp_path: Path) -> None:
    video, audio = encode_h264(seconds=4.0, gop_frames=30), encode_opus(seconds=4.0)
    with override_settings(MEDIA_EMBEDDED=True, MEDIA_NODE="embedded", RECORDINGS_ROOT=tmp_path):
        room, doctor, patient, doctor_token, patient_token = await setup_room(consent=None)
        client = AsyncClient()
        d = await SocketClient.for_user(doctor, timeout=20)
        pub = None
        try:
            await d.subscribe(f"conv:{room.removeprefix('conv-')}")
            grant = (await api_post(client, patient_token, f"/media/rooms/{room}/grant")).json()
            pub = await publish_clips(whip_signal(client, grant["whip_url"], grant["token"]), video, audio)
            await _wait_for_video(room, f"u{patient.pk}")
            refused = await api_post(client, doctor_token, f"/media/rooms/{room}/recording/start")
            assert refused.json()["code"] == CODE

            # The patient agrees in the app; now the doctor may record (over the socket here).
            granted = await client.post(
                "/api/v1/accounts/consents",
                {"purpose": "recording", "granted": True},
                content_type="application/json",
                headers={"Authorization": f"Bearer {patient_token}"},
            )
            assert granted.status_code == 200 and granted.json()["granted"] is True
            started = await d.request({"type": "media.record_start", "room": room})
            assert started["ok"], started
            public_id = started["data"]["public_id"]
            assert started["data"]["status"] == "recording"
            await asyncio.sleep(1.0)

            # Withdrawn mid-session: the recording is stopped through the stop path at once.
            withdrawn = await client.post(
                "/api/v1/accounts/consents",
                {"purpose": "recording", "granted": False},
                content_type="application/json",
                headers={"Authorization": f"Bearer {patient_token}"},
            )
            assert withdrawn.status_code == 200 and withdrawn.json()["granted"] is False
            row = await Recording.objects.aget(public_id=public_id)
            assert row.status == Recording.Status.COMPLETE
            assert row.duration_seconds > 0.3, row.duration_seconds
            event = await TransitionEvent.objects.aget(object_type="recordings.recording", object_id=str(row.pk))
            assert (event.action, event.to_status, event.reason) == ("finish", "complete", "consent_withdrawn")
            audit = await AuditEvent.objects.aget(action="recording.stop", object_id=str(row.public_id))
            assert audit.detail["reason"] == "consent_withdrawn" and audit.actor_id == patient.pk
            # The doctor is told on the conversation topic.
            told = await d.wait_for(event="media.recording_stopped", timeout=10)
            assert told["data"]["public_id"] == public_id
            assert told["data"]["reason"] == "consent_withdrawn" and told["data"]["status"] == "complete"
            # Not recording any more; a new start is refused again.
            again = await d.request({"type": "media.record_start", "room": room})
            assert again["code"] == CODE
            assert (await api_post(client, doctor_token, f"/media/rooms/{room}/recording/stop")).status_code == 404
        finally:
            if pub is not None:
                await pub.close()
            await d.close()
            await embedded.shutdown()


async def test_a_withdrawal_that_races_the_start_refuses_it_and_keeps_nothing(tmp_path: Path) -> None:
    """The doctor starts while nobody publishes yet (the node waits for a publisher); the
    patient withdraws in that window, then publishes: the start is refused with the consent
    code, no recording row, no file and no running recorder remain."""
    video, audio = encode_h264(seconds=4.0, gop_frames=30), encode_opus(seconds=4.0)
    with override_settings(MEDIA_EMBEDDED=True, MEDIA_NODE="embedded", RECORDINGS_ROOT=tmp_path):
        room, doctor, _patient, _doctor_token, patient_token = await setup_room(consent=True)
        client = AsyncClient()
        d = await SocketClient.for_user(doctor, timeout=20)
        pub = None
        try:
            # Over the socket: the REST view would hold the test's one sync thread for the whole start.
            start = asyncio.create_task(d.request({"type": "media.record_start", "room": room}))
            # The start passed its checks and registered the row; the node waits for a publisher.
            for _ in range(300):
                if await Recording.objects.filter(room_id=room).aexists():
                    break
                await asyncio.sleep(0.01)
            else:
                pytest.fail(f"the start never registered: {await start}")
            withdrawn = await client.post(
                "/api/v1/accounts/consents",
                {"purpose": "recording", "granted": False},
                content_type="application/json",
                headers={"Authorization": f"Bearer {patient_token}"},
            )
            assert withdrawn.status_code == 200 and withdrawn.json()["granted"] is False
            grant = (await api_post(client, patient_token, f"/media/rooms/{room}/grant")).json()
            pub = await publish_clips(whip_signal(client, grant["whip_url"], grant["token"]), video, audio)
            answer = await asyncio.wait_for(start, 20)
            assert answer["type"] == "error" and answer["code"] == CODE, answer
            assert "患者尚未同意" in answer["message"], answer
            assert not await Recording.objects.filter(room_id=room, status=Recording.Status.RECORDING).aexists()
            assert room not in embedded.node().recorders
            assert not [p for p in tmp_path.rglob("*") if p.is_file()], list(tmp_path.rglob("*"))
            assert not await Recording.objects.filter(room_id=room).aexists()
            # Whatever the node had written is gone, and that is on record (ids and codes only).
            discarded = [e async for e in AuditEvent.objects.filter(action="recording.discarded")]
            assert [e.detail for e in discarded] in ([], [{"room": room, "reason": "consent_withdrawn"}])
        finally:
            if pub is not None:
                await pub.close()
            await d.close()
            await embedded.shutdown()

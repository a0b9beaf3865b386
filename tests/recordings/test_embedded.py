"""Embedded mode: WHIP/WHEP rooms are the node's rooms; the hub records through the node's commands."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import av
import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient, override_settings

from apps.accounts.roles import Role
from apps.accounts.services import consent_set, token_issue
from apps.im.services import conversation_for_pair
from apps.media import embedded
from media_engine.client import publish_clips
from media_engine.recording import verify_manifest
from media_engine.synthetic import encode_h264, encode_opus
from recordings.models import Recording
from recordings.services import recording_file
from recordings.storage import manifest_key
from tests.conftest import make_patient, make_staff

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


def whip_signal(client: AsyncClient, url: str, token: str) -> Callable[[str], Awaitable[str]]:
    async def post(sdp: str) -> str:
        response = await client.post(
            url, sdp, content_type="application/sdp", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 201, response.content
        return response.content.decode()

    return post


async def api_post(client: AsyncClient, token: str, path: str) -> Any:
    return await client.post(
        f"/api/v1{path}", "{}", content_type="application/json", headers={"Authorization": f"Bearer {token}"}
    )


@sync_to_async
def setup_room() -> tuple[str, str, str, str, int]:
    doctor = make_staff(Role.DOCTOR, "embdoc")
    patient = make_patient("13911112222")
    outsider = make_patient("13911113333", name="旁人")
    conv = conversation_for_pair(staff=doctor.user, patient=patient.user)
    # Recording needs the patient's consent (apps.media.recording).
    consent_set(user=patient.user, purpose="recording", granted=True)
    raw = [token_issue(user=p.user).raw for p in (doctor, patient, outsider)]
    return f"conv-{conv.pk}", raw[0], raw[1], raw[2], patient.user.pk


async def test_embedded_node_records_the_whip_room_and_keeps_the_row(tmp_path: Path) -> None:
    video, audio = encode_h264(seconds=2.0, gop_frames=30), encode_opus(seconds=2.0)
    with override_settings(MEDIA_EMBEDDED=True, MEDIA_NODE="embedded", RECORDINGS_ROOT=tmp_path):
        room, doctor, patient, outsider, patient_id = await setup_room()
        client = AsyncClient()
        refused = await api_post(client, outsider, f"/media/rooms/{room}/grant")
        assert refused.status_code == 403
        assert (await api_post(client, doctor, "/media/rooms/not-a-room/grant")).status_code == 404
        response = await api_post(client, patient, f"/media/rooms/{room}/grant")
        assert response.status_code == 200, response.content
        grant = response.json()
        assert grant["peer_id"] == f"u{patient_id}" and grant["publish"] and grant["subscribe"]
        # Only clinical staff of the conversation control recording.
        assert (await api_post(client, patient, f"/media/rooms/{room}/recording/start")).status_code == 403
        pub = await publish_clips(whip_signal(client, grant["whip_url"], grant["token"]), video, audio)
        try:
            # One engine: the room the patient publishes into over WHIP is the node's room.
            assert embedded.node().engine is embedded.engine()
            assert f"u{patient_id}" in embedded.engine().room(room).publishers
            started = await api_post(client, doctor, f"/media/rooms/{room}/recording/start")
            assert started.status_code == 200, started.content
            row = await Recording.objects.aget(public_id=started.json()["public_id"])
            assert row.node == "embedded" and row.status == Recording.Status.RECORDING
            again = await api_post(client, doctor, f"/media/rooms/{room}/recording/start")
            assert again.status_code == 409
            source = embedded.engine().room(room).publishers[f"u{patient_id}"].sources["video"]
            for _ in range(500):
                if source.keyframes_in:
                    break
                await asyncio.sleep(0.01)
            assert source.keyframes_in, "no video reached the room"
            await asyncio.sleep(2.0)  # the recording's length
            stopped = await api_post(client, doctor, f"/media/rooms/{room}/recording/stop")
            assert stopped.status_code == 200, stopped.content
            assert stopped.json()["status"] == "complete"
            assert (await api_post(client, doctor, f"/media/rooms/{room}/recording/stop")).status_code == 404
        finally:
            await pub.close()
            await embedded.shutdown()
        row = await Recording.objects.aget(pk=row.pk)
        assert row.status == Recording.Status.COMPLETE
        assert 1.5 <= row.duration_seconds <= 3.0, row.duration_seconds
        path = recording_file(row)
        assert verify_manifest(row.manifest, manifest_key(), path)
        assert row.manifest["publisher"] == f"u{patient_id}"
        with av.open(str(path)) as container:
            assert sorted(s.type for s in container.streams) == ["audio", "video"]
            assert sum(1 for _ in container.decode(video=0)) >= 40
        participants = await sync_to_async(lambda: [u.username for u in row.participants.all()])()
        assert participants == ["embdoc"]

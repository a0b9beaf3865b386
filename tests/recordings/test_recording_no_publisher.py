"""Recording start in a real room where nobody publishes (issue 11 finding 9: it was a 500):
409 ``media.no_publisher`` with its Chinese message, declared on the route, nothing written
(no row, no transition event, no audit record, no recorder on the node), on REST and the
socket alike, whether nobody ever published or the publisher has left."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient, override_settings

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.core.models import TransitionEvent
from apps.media import embedded
from media_engine.client import publish_clips
from media_engine.synthetic import encode_h264, encode_opus
from recordings.models import Recording
from tests.recordings.test_embedded import api_post, setup_room
from tests.support.socket_client import SocketClient

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

CODE = "media.no_publisher"
MESSAGE = "对方尚未开始推流"


@sync_to_async
def written(room: str) -> dict[str, int]:
    return {
        "recordings": Recording.objects.filter(room_id=room).count(),
        "events": TransitionEvent.objects.filter(object_type="recordings.recording").count(),
        "audit": AuditEvent.objects.filter(action__in=["recording.start", "recording.stop"]).count(),
    }


def assert_refused(response: Any) -> None:
    assert response.status_code == 409, response.content
    assert response.json() == {"code": CODE, "message": MESSAGE, "detail": {}}


async def test_start_without_any_publisher_is_409_and_writes_nothing(tmp_path: Path) -> None:
    with override_settings(MEDIA_EMBEDDED=True, MEDIA_NODE="embedded", RECORDINGS_ROOT=tmp_path):
        room, doctor_token, patient_token, _, _ = await setup_room()
        client = AsyncClient()
        try:
            # The patient holds a grant for the room but publishes nothing.
            assert (await api_post(client, patient_token, f"/media/rooms/{room}/grant")).status_code == 200
            assert_refused(await api_post(client, doctor_token, f"/media/rooms/{room}/recording/start"))
            assert await written(room) == {"recordings": 0, "events": 0, "audit": 0}
            assert embedded.node().recorders == {}
            # Refused again, never "already recording": nothing was left behind.
            assert_refused(await api_post(client, doctor_token, f"/media/rooms/{room}/recording/start"))
            assert (await api_post(client, doctor_token, f"/media/rooms/{room}/recording/stop")).status_code == 404
            assert await written(room) == {"recordings": 0, "events": 0, "audit": 0}
            assert list(tmp_path.rglob("*.mp4")) == []
        finally:
            await embedded.shutdown()


async def test_start_after_the_publisher_ended_its_session_is_409_on_rest_and_the_socket(tmp_path: Path) -> None:
    video, audio = encode_h264(seconds=1.0, gop_frames=15), encode_opus(seconds=1.0)
    with override_settings(MEDIA_EMBEDDED=True, MEDIA_NODE="embedded", RECORDINGS_ROOT=tmp_path):
        room, doctor_token, patient_token, _, patient_id = await setup_room()
        client = AsyncClient()
        doctor = await User.objects.aget(username="embdoc")
        d = await SocketClient.for_user(doctor, timeout=20)
        locations: list[str] = []
        grant = (await api_post(client, patient_token, f"/media/rooms/{room}/grant")).json()

        async def signal(sdp: str) -> str:
            r = await client.post(
                grant["whip_url"],
                sdp,
                content_type="application/sdp",
                headers={"Authorization": f"Bearer {grant['token']}"},
            )
            assert r.status_code == 201, r.content
            locations.append(r["Location"])
            return r.content.decode()

        try:
            pub = await publish_clips(signal, video, audio)
            assert f"u{patient_id}" in embedded.engine().room(room).publishers
            # The patient leaves the room: WHIP DELETE of the session, then the peer closes.
            assert (await client.delete(locations[0])).status_code == 200
            await pub.close()
            assert f"u{patient_id}" not in embedded.engine().room(room).publishers
            assert_refused(await api_post(client, doctor_token, f"/media/rooms/{room}/recording/start"))
            refused = await d.request({"type": "media.record_start", "room": room})
            assert refused["type"] == "error" and refused["code"] == CODE and refused["message"] == MESSAGE, refused
            assert await written(room) == {"recordings": 0, "events": 0, "audit": 0}
            assert embedded.node().recorders == {}
        finally:
            await d.close()
            await embedded.shutdown()


async def test_a_recording_of_a_silent_publisher_is_dropped_at_stop_not_left_recording(tmp_path: Path) -> None:
    """The publisher is in the room but sends nothing any more (its clip ended; a frozen
    phone, a peer gone without WHIP DELETE): the start is accepted, and the stop answers
    409 ``media.recording_empty`` with the row removed (audited) and no file, instead of
    a 503 that left the row ``recording`` for ever."""
    video, audio = encode_h264(seconds=0.5, gop_frames=15), encode_opus(seconds=0.5)
    with override_settings(MEDIA_EMBEDDED=True, MEDIA_NODE="embedded", RECORDINGS_ROOT=tmp_path):
        room, doctor_token, patient_token, _, patient_id = await setup_room()
        client = AsyncClient()
        grant = (await api_post(client, patient_token, f"/media/rooms/{room}/grant")).json()

        async def signal(sdp: str) -> str:
            auth = {"Authorization": f"Bearer {grant['token']}"}
            r = await client.post(grant["whip_url"], sdp, content_type="application/sdp", headers=auth)
            assert r.status_code == 201, r.content
            return r.content.decode()

        pub = await publish_clips(signal, video, audio)
        try:
            await asyncio.sleep(0.5)
            for track in pub.tracks.values():
                track.stop()  # the camera and microphone stop; the connection stays up
            await asyncio.sleep(0.5)  # the last packets have reached the node
            assert f"u{patient_id}" in embedded.engine().room(room).publishers
            started = await api_post(client, doctor_token, f"/media/rooms/{room}/recording/start")
            assert started.status_code == 200, started.content
            stopped = await api_post(client, doctor_token, f"/media/rooms/{room}/recording/stop")
            assert stopped.status_code == 409, stopped.content
            assert stopped.json()["code"] == "media.recording_empty" and "未生成录像" in stopped.json()["message"]
            assert not await Recording.objects.filter(room_id=room).aexists()
            assert await AuditEvent.objects.filter(action="recording.dropped").acount() == 1
            assert embedded.node().recorders == {}
            assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
        finally:
            await pub.close()
            await embedded.shutdown()

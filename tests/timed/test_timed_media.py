"""The end closes the media: the room's running recording sealed and the room gone from
the node, whether the clock ended the session or the worker did (embedded node: the worker
cannot reach it, the web clock closes the room of a session ended elsewhere)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings

from apps.media import embedded
from apps.media.control import send_command, start_recording
from apps.timed import services
from apps.timed.clock import Clock
from apps.timed.models import TimedSession
from media_engine.client import publish_clips
from media_engine.recording import verify_manifest
from media_engine.synthetic import encode_h264, encode_opus
from recordings.models import Recording
from recordings.services import recording_file
from recordings.storage import manifest_key

from .conftest import KIND, Calls

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

ROOM = "conv-987654"


async def rooms() -> list[str]:
    reply = await send_command("embedded", "node.ping", "")
    assert reply["ok"]
    return list(reply["rooms"])


async def test_the_deadline_seals_the_recording_and_closes_the_room(owner: Calls, tmp_path: Path) -> None:
    video, audio = encode_h264(seconds=3.0, gop_frames=30), encode_opus(seconds=3.0)
    with override_settings(MEDIA_EMBEDDED=True, MEDIA_NODE="embedded", RECORDINGS_ROOT=tmp_path):

        async def signal(sdp: str) -> str:
            return await embedded.engine().room(ROOM).publish("u1", sdp)

        pub = await publish_clips(signal, video, audio)
        try:
            source = embedded.engine().room(ROOM).publishers["u1"].sources["video"]
            for _ in range(500):
                if source.keyframes_in:
                    break
                await asyncio.sleep(0.01)
            recording = await start_recording(room_id=ROOM, participants=[])
            session = await sync_to_async(services.session_start)(KIND, "m1", 60, room_id=ROOM)
            clock = Clock().install()
            await asyncio.sleep(1.5)  # something to record
            assert ROOM in await rooms()
            result = await clock.step(session.deadline.timestamp() + 0.1)
            assert result.ended == [session.pk]
            await clock.drain()  # the end asked the clock to close the media after commit
            row = await TimedSession.objects.aget(pk=session.pk)
            assert row.media_closed_at is not None
            assert ROOM not in await rooms()
            sealed = await Recording.objects.aget(pk=recording.pk)
            assert sealed.status == Recording.Status.COMPLETE and sealed.duration_seconds > 0.5
            assert verify_manifest(sealed.manifest, manifest_key(), recording_file(sealed))
        finally:
            await pub.close()
            await embedded.shutdown()


async def test_a_session_the_worker_ended_gets_its_room_closed_by_the_web_clock(owner: Calls, tmp_path: Path) -> None:
    with override_settings(MEDIA_EMBEDDED=True, MEDIA_NODE="embedded", RECORDINGS_ROOT=tmp_path):
        try:
            assert (await send_command("embedded", "room.open", ROOM))["ok"]
            assert ROOM in await rooms()
            session = await sync_to_async(services.session_start)(KIND, "m2", 60, room_id=ROOM)
            await TimedSession.objects.filter(pk=session.pk).aupdate(deadline=session.deadline.replace(year=2020))
            # The worker's sweep: no clock in its process, no way to the embedded node.
            assert await sync_to_async(services.sessions_end_overdue)() == 1
            row = await TimedSession.objects.aget(pk=session.pk)
            assert row.status == TimedSession.Status.ENDED and row.media_closed_at is None
            assert ROOM in await rooms()
            # The web clock (any step) closes the media of ended sessions still open.
            clock = Clock().install()
            result = await clock.step(session.deadline.timestamp())
            assert result.media_closed == [session.pk]
            assert ROOM not in await rooms()
            assert (await TimedSession.objects.aget(pk=session.pk)).media_closed_at is not None
            assert (await clock.step(session.deadline.timestamp() + 1)).media_closed == []
        finally:
            await embedded.shutdown()

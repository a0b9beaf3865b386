"""WebRTC offer/answer over the hub socket (media.publish / media.play / media.leave) with real aiortc peers."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings

from apps.accounts.roles import Role
from apps.audit.models import AuditEvent
from apps.im.services import conversation_for_pair
from apps.media import embedded
from apps.media.control import send_command
from media_engine.client import publish_clips, subscribe
from media_engine.synthetic import encode_h264, encode_opus
from tests.conftest import make_patient, make_staff
from tests.recordings.test_media_node import start_node
from tests.support.socket_client import SocketClient

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


@sync_to_async
def setup_room() -> tuple[str, Any, Any, Any]:
    doctor = make_staff(Role.DOCTOR, "sockmediadoc")
    patient = make_patient("13911114444")
    outsider = make_patient("13911115555", name="旁人")
    conv = conversation_for_pair(staff=doctor.user, patient=patient.user)
    return f"conv-{conv.pk}", doctor.user, patient.user, outsider.user


@sync_to_async
def add_observer(room: str) -> Any:
    from apps.im.models import Conversation, Member
    from apps.im.services import member_add

    observer = make_staff(Role.DOCTOR, "sockobserver")
    conversation = Conversation.objects.get(pk=int(room.removeprefix("conv-")))
    member_add(conversation=conversation, user=observer.user, role=Member.Role.OBSERVER)
    return observer.user


OFFER = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


async def test_publish_and_play_over_the_socket(tmp_path: Path) -> None:
    video, audio = encode_h264(width=320, height=240, seconds=2.0, gop_frames=30), encode_opus(seconds=2.0)
    with override_settings(MEDIA_EMBEDDED=True, MEDIA_NODE="embedded", RECORDINGS_ROOT=tmp_path):
        room, doctor, patient, outsider = await setup_room()
        d, p, o = [await SocketClient.for_user(user, timeout=20) for user in (doctor, patient, outsider)]
        pub = sub = None
        try:
            # A non-member is refused, with the same code as the grant endpoint's.
            for kind in ("media.publish", "media.play"):
                refused = await o.request({"type": kind, "room": room, "sdp": OFFER})
                assert refused["type"] == "error" and refused["code"] == "im.not_member", refused
            not_room = await o.request({"type": "media.play", "room": "conv-x", "sdp": OFFER})
            assert not_room["code"] == "not_found"
            # An observer of the conversation may play but not publish.
            w = await SocketClient.for_user(await add_observer(room), timeout=20)
            watcher = await w.request({"type": "media.publish", "room": room, "sdp": OFFER})
            assert watcher["code"] == "media.publish_forbidden", watcher
            await w.close()
            bad = await p.request({"type": "media.publish", "room": room, "sdp": "hello"})
            assert bad["code"] == "validation_error"
            # Nobody publishes yet: the player is told so at once (and retries).
            early = await d.request({"type": "media.play", "room": room, "sdp": OFFER})
            assert early["code"] == "media.no_publisher", early

            pub = await publish_clips(p.signal({"type": "media.publish", "room": room}), video, audio)
            sub = await subscribe(d.signal({"type": "media.play", "room": room, "wait": 2}), encoded=False)
            got = await sub.wait_count("video", 30, timeout=20)
            first = got.first_frame
            assert (first.width, first.height) == (320, 240)
            assert (await sub.wait_count("audio", 10, timeout=10)).count >= 10
            publishers = embedded.engine().room(room).publishers
            assert list(publishers) == [f"u{patient.pk}"]
            assert f"u{doctor.pk}" in embedded.engine().room(room).subscribers

            # The decision is audited like a grant, with the way in.
            vias = await sync_to_async(
                lambda: sorted(
                    e.detail.get("via", "")
                    for e in AuditEvent.objects.filter(action="media.room_grant", object_id=room)
                    if e.result == AuditEvent.Result.OK
                )
            )()
            assert "socket.play" in vias and "socket.publish" in vias

            left = await p.request({"type": "media.leave", "room": room})
            assert left["ok"] and left["data"]["peer"] == f"u{patient.pk}"
            assert embedded.engine().room(room).publishers == {}
        finally:
            for client in (sub, pub):
                if client is not None:
                    await client.close()
            for comm in (d, p, o):
                await comm.close()
            await embedded.shutdown()


async def test_socket_signaling_reaches_a_remote_media_node(tmp_path: Path) -> None:
    """Not embedded: the offers travel as node commands over the channel layer to a run_media_node process."""
    video, audio = encode_h264(width=320, height=240, seconds=2.0, gop_frames=30), encode_opus(seconds=2.0)
    name = f"s{os.getpid()}{uuid.uuid4().hex[:6]}"
    node, _ = await start_node(name, f"media.events.{name}", tmp_path)
    try:
        with override_settings(MEDIA_EMBEDDED=False, MEDIA_NODE=name, RECORDINGS_ROOT=tmp_path):
            # The node answers its command channel before any socket frame relies on it.
            assert (await send_command(name, "node.ping", "", timeout=30)).get("ok")
            room, doctor, patient, outsider = await setup_room()
            d, p, o = [await SocketClient.for_user(user, timeout=20) for user in (doctor, patient, outsider)]
            pub = sub = None
            try:
                refused = await o.request({"type": "media.publish", "room": room, "sdp": OFFER})
                assert refused["code"] == "im.not_member", refused
                pub = await publish_clips(p.signal({"type": "media.publish", "room": room}), video, audio)
                sub = await subscribe(d.signal({"type": "media.play", "room": room, "wait": 3}), encoded=False)
                got = await sub.wait_count("video", 30, timeout=20)
                assert (got.first_frame.width, got.first_frame.height) == (320, 240)
                # Nothing of this room lives in the hub process.
                assert room not in embedded.engine().rooms
                left = await p.request({"type": "media.leave", "room": room})
                assert left["ok"], left
                # The publication ended on the node: a new player finds nobody to play.
                await sub.close()
                sub = None
                again = await d.request({"type": "media.play", "room": room, "sdp": OFFER})
                assert again["code"] == "media.no_publisher", again
            finally:
                for client in (sub, pub):
                    if client is not None:
                        await client.close()
                for comm in (d, p, o):
                    await comm.close()
                await embedded.shutdown()
    finally:
        node.kill()
        await asyncio.wait_for(node.wait(), 10)

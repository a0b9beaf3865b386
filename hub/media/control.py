"""Hub side of the media node: commands out, events in, Recording rows kept.

Commands go to the node's channel (``media.node.<name>``) with a short-lived
``node`` grant; the node answers on a reply channel. Events come back on
``media.events`` (or the channel the node was started with) and update
``recordings.Recording``. When a node dies (SIGKILL, lost host), its open
recordings are sealed from the cut files with the gap noted in the manifest.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.utils import timezone

from apps.accounts.models import User
from apps.audit.services import audit_record
from media_engine.grants import sign_grant
from media_engine.recording import recover_manifest
from recordings.models import Recording
from recordings.services import recording_file, recording_finish, recording_start

from .grants import grant_key, manifest_key

log = logging.getLogger(__name__)

EVENTS_CHANNEL = "media.events"


def node_channel(name: str) -> str:
    return f"media.node.{name}"


def node_grant(cmd: str, room_id: str) -> str:
    return sign_grant(
        {"purpose": "node", "cmd": cmd, "room": room_id}, key=grant_key(), ttl_seconds=settings.MEDIA_GRANT_TTL_SECONDS
    )


async def send_command(node: str, cmd: str, room_id: str, *, timeout: float = 15.0, **data: Any) -> dict[str, Any]:
    """Send one command to a media node and wait for its reply."""
    layer = get_channel_layer()
    assert layer is not None
    reply = await layer.new_channel("media.reply.")
    message = {"type": "media.command", "cmd": cmd, "room": room_id, "grant": node_grant(cmd, room_id)}
    await layer.send(node_channel(node), {**message, **data, "reply_to": reply})
    result: dict[str, Any] = await asyncio.wait_for(layer.receive(reply), timeout)
    return result


async def start_recording(*, node: str, room_id: str, participants: Iterable[User]) -> Recording:
    """Register the recording, then have the node start writing it."""
    recording = await sync_to_async(_create)(room_id, node, list(participants))
    result = await send_command(node, "record.start", room_id, recording=str(recording.public_id))
    if not result.get("ok"):
        await Recording.objects.filter(pk=recording.pk).adelete()
        raise RuntimeError(f"media node refused record.start: {result.get('code')}")
    return recording


def _create(room_id: str, node: str, participants: list[User]) -> Recording:
    import uuid

    public_id = uuid.uuid4()
    recording = recording_start(room_id=room_id, storage_path=f"{room_id}/{public_id}.mp4", participants=participants)
    Recording.objects.filter(pk=recording.pk).update(public_id=public_id, node=node)
    recording.refresh_from_db()
    return recording


def handle_event(event: dict[str, Any]) -> Recording | None:
    """Apply one node event to the Recording rows (idempotent)."""
    kind = event.get("type")
    recording_id = str(event.get("recording") or "")
    recording = Recording.objects.filter(public_id=recording_id).first() if recording_id else None
    if kind == "record.started" and recording is not None:
        recording.started_at = dt.datetime.fromisoformat(str(event["started_at"]))
        recording.node = str(event.get("node", recording.node))
        recording.save(update_fields=["started_at", "node"])
        return recording
    if kind == "record.stopped" and recording is not None and recording.status == Recording.Status.RECORDING:
        return recording_finish(recording=recording, manifest=dict(event["manifest"]))
    return recording


async def listen_events(channel: str = EVENTS_CHANNEL, *, until: asyncio.Event | None = None) -> None:
    """Consume node events until ``until`` is set (or forever)."""
    layer = get_channel_layer()
    assert layer is not None
    while until is None or not until.is_set():
        try:
            event = await asyncio.wait_for(layer.receive(channel), 1.0)
        except TimeoutError:
            continue
        try:
            await sync_to_async(handle_event)(event)
        except Exception:
            log.exception("media event %s not applied", event.get("type"))


def node_lost(node: str) -> list[Recording]:
    """The node is gone: seal each of its open recordings from the cut file, noting the gap."""
    now = timezone.now()
    sealed = []
    for recording in Recording.objects.filter(node=node, status=Recording.Status.RECORDING):
        path = recording_file(recording)
        if not path.exists():
            continue
        wall = (now - recording.started_at).total_seconds()
        manifest = recover_manifest(path, manifest_key(), room=recording.room_id, node=node, lost_at=now.isoformat())
        gap = max(0.0, round(wall - float(manifest.get("duration_seconds") or 0), 3))
        manifest = recover_manifest(
            path, manifest_key(), room=recording.room_id, node=node, lost_at=now.isoformat(), gap_seconds=gap
        )
        sealed.append(recording_finish(recording=recording, manifest=manifest))
        audit_record(
            action="recording.recovered",
            object_type="recording",
            object_id=recording.public_id,
            detail={"node": node, "gap_seconds": gap},
        )
    return sealed

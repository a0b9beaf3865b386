"""The real media node process: commanded over the channel layer, SIGKILLed mid-recording."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import sys
import uuid
from pathlib import Path

import av
import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection
from django.test import override_settings

from apps.media.control import node_channel, node_lost, send_command, start_recording
from apps.media.grants import room_grant
from recordings.models import Recording
from recordings.services import recording_file

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parents[2]


async def start_node(name: str, events: str, root: Path) -> tuple[asyncio.subprocess.Process, int]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "RECORDINGS_ROOT": str(root)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "manage.py", "run_media_node", "--name", name, "--rtmp-port", "0", "--http-port", "0",
        "--events-channel", events,
        cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    match = re.search(r"READY .*rtmp=(\d+)", line)
    assert match, f"node did not start: {line!r}"
    return proc, int(match.group(1))


async def start_control(name: str, events: str, root: Path) -> asyncio.subprocess.Process:
    """``run_media_control`` on the test database: pings every 0.5 s, node lost after 2 misses."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}",
        "RECORDINGS_ROOT": str(root),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "manage.py", "run_media_control", "--node", name, "--events-channel", events,
        "--interval", "0.5", "--misses", "2",
        cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    assert line.startswith("READY"), f"control did not start: {line!r}"
    return proc


async def test_sigkill_of_media_node_mid_recording_leaves_playable_file_with_gap(tmp_path: Path) -> None:
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg
    name = f"t{os.getpid()}{uuid.uuid4().hex[:6]}"
    events = f"media.events.{name}"
    room = f"crash-{name}"
    with override_settings(RECORDINGS_ROOT=tmp_path):
        node, rtmp_port = await start_node(name, events, tmp_path)
        # The hub side runs as its own process too: events -> rows, heartbeat -> node_lost.
        control = await start_control(name, events, tmp_path)
        # The remote node checks the grant and its revocation list, not the database: any session id.
        grant = room_grant(room_id=room, peer_id="pusher", role="patient", publish=True, subscribe=False, sid=1)
        push = await asyncio.create_subprocess_exec(
            ffmpeg, "-hide_banner", "-loglevel", "error", "-re",
            "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-f", "lavfi", "-i", "sine=frequency=440",
            "-t", "30", "-c:v", "libx264", "-profile:v", "baseline", "-preset", "veryfast", "-g", "15",
            "-c:a", "aac", "-f", "flv", f"rtmp://127.0.0.1:{rtmp_port}/live/{room}?grant={grant}",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            assert (await send_command(name, "node.ping", room))["ok"] is True
            # A command without a valid hub-signed grant is refused by the node.
            layer = get_channel_layer()
            reply = await layer.new_channel("media.reply.")
            forged = {
                "type": "media.command",
                "cmd": "room.close",
                "room": room,
                "grant": "e30.AAAA",
                "reply_to": reply,
            }
            await layer.send(node_channel(name), forged)
            refused = await asyncio.wait_for(layer.receive(reply), 10)
            assert refused["ok"] is False and refused["code"] == "grant.invalid"
            recording = await start_recording(node=name, room_id=room, participants=[])
            assert recording.node == name and recording.status == Recording.Status.RECORDING
            # The node's record.started event reaches the hub-side handler.
            for _ in range(100):
                refreshed = await Recording.objects.aget(pk=recording.pk)
                if refreshed.started_at != recording.started_at:
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail("record.started event not applied")
            await asyncio.sleep(3.0)
            assert recording.status == Recording.Status.RECORDING
            killed_at = asyncio.get_running_loop().time()
            node.send_signal(signal.SIGKILL)
            assert await asyncio.wait_for(node.wait(), 10) == -signal.SIGKILL
            # Nobody calls node_lost by hand: the heartbeat notices and seals the recording.
            for _ in range(300):
                rec = await Recording.objects.aget(pk=recording.pk)
                if rec.status != Recording.Status.RECORDING:
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail("the heartbeat did not declare the node lost")
            assert asyncio.get_running_loop().time() - killed_at >= 1.0  # 2 pings of 0.5 s unanswered
        finally:
            if node.returncode is None:
                node.kill()
                await node.wait()
            if push.returncode is None:
                push.kill()
            await push.wait()
            if control.returncode is None:
                control.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(control.wait(), 15) == 0
        assert rec.status == Recording.Status.RECOVERED
        assert rec.manifest["recovered"] is True and rec.manifest["node"] == name
        assert rec.duration_seconds >= 2.0, rec.manifest
        assert rec.manifest["gap_seconds"] >= 1.0, rec.manifest
        path = recording_file(rec)
        with av.open(str(path)) as container:
            kinds = sorted(s.type for s in container.streams)
            assert kinds == ["audio", "video"]
            frames = sum(1 for _ in container.decode(video=0))
        assert frames >= 45, f"only {frames} video frames decode from the cut file"
        # Idempotent: the node is already accounted for.
        assert await sync_to_async(node_lost)(name) == []

"""Socket edge cases against a real daphne (autobahn) process: every one ends in
a documented reply or close code (docs/realtime-protocol.md), never a crash (1011)
or a dropped connection (1006). Issue 11 finding 10."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from apps.accounts.roles import Role
from apps.accounts.services import token_issue
from apps.im import services
from tests.conftest import make_patient, make_staff
from tests.support.server import DaphneServer
from tests.support.socket_client import SocketClient

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def server() -> Any:
    daphne = DaphneServer().start()
    yield daphne
    daphne.stop()


def test_edge_frames_get_documented_codes(server: DaphneServer) -> None:
    doctor = make_staff(Role.DOCTOR, "edgedoc")
    patient = make_patient("13900000051", "边界患者")
    conv = services.conversation_for_pair(staff=doctor.user, patient=patient.user)
    token = token_issue(user=doctor.user).raw

    async def connect() -> SocketClient:
        return await SocketClient.connect(server.ws_url, token, origin=server.url)

    async def closed_by(frame: str | bytes, *, text: bool = True) -> int | None:
        client = await connect()
        ws = client.transport.ws  # type: ignore[attr-defined]
        await ws.send(frame, text=text)
        code = await client.wait_closed(timeout=10)
        await client.close()
        return code

    async def scenario() -> dict[str, Any]:
        out: dict[str, Any] = {}
        client = await connect()
        # Topic ids: out of range, not canonical, not numeric -> topic.invalid; the socket stays.
        for topic in (f"conv:{'9' * 30}", "conv:9223372036854775808", f"conv:0{conv.pk}", "conv:0", "user:abc"):
            out[topic] = (await client.subscribe(topic)).get("code")
        out["own"] = (await client.subscribe(f"conv:{conv.pk}"))["ok"]
        # Booleans are never ints: not conversation 1.
        for frame in (
            {"type": "im.sync", "conversation": True, "after_seq": 0},
            {"type": "im.sync", "conversation": conv.pk, "after_seq": True},
            {"type": "im.sync", "conversation": conv.pk, "after_seq": 0, "limit": 201},
            {"type": "im.read", "conversation": conv.pk, "seq": 2**63},
            {"type": "im.recall", "conversation": conv.pk, "seq": 2**64 - 1},
            {"type": "im.typing", "conversation": 10**30},
            {"type": "im.send", "conversation": True, "client_msg_id": "b1", "body": {"text": "x"}},
        ):
            reply = await client.request(frame)
            out.setdefault("frames", []).append((frame, reply.get("code")))
        out["alive"] = (await client.request({"type": "ping"}))["type"]
        await client.close()
        # Transport limits: the documented close codes, with a closing handshake.
        out["70KB"] = await closed_by(json.dumps({"type": "ping", "pad": "x" * (70 * 1024)}))
        out["2MB"] = await closed_by(json.dumps({"type": "ping", "pad": "x" * (2 * 1024 * 1024)}))
        out["utf8"] = await closed_by(b'{"type":"ping","x":"\xff\xfe"}', text=True)
        out["binary"] = await closed_by(b'{"type":"ping"}', text=False)
        out["bool id"] = await closed_by(json.dumps({"type": "ping", "id": True}))
        return out

    out = asyncio.run(asyncio.wait_for(scenario(), 90))
    for topic in (f"conv:{'9' * 30}", "conv:9223372036854775808", f"conv:0{conv.pk}", "conv:0", "user:abc"):
        assert out[topic] == "topic.invalid", (topic, out[topic])
    assert out["own"] is True
    for frame, code in out["frames"]:
        assert code == "validation_error", (frame, code)
    assert out["alive"] == "pong"
    assert out["70KB"] == 4009 and out["2MB"] == 4009, out
    assert out["utf8"] == 4011 and out["binary"] == 4011, out
    assert out["bool id"] == 4011, out
    assert server.alive

"""Socket rules: origin, credentials, deadline, limits, topics, session end."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from apps.accounts import services
from apps.accounts.roles import Role
from hub.asgi import application
from hub.realtime import consumer as consumer_module
from hub.realtime.node import node
from hub.realtime.sessions import event_frame
from tests.conftest import STRONG, make_staff

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def publish(topic: str, event: str, data: dict) -> None:
    node().publish_from_thread(topic, event_frame(topic, event, data))


ORIGIN = [(b"origin", b"http://127.0.0.1:8000")]


@pytest.fixture(autouse=True)
def _fresh_limiter() -> None:
    consumer_module._limiter = None


async def connect(headers: list[tuple[bytes, bytes]] | None = None) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(application, "/ws/", headers=ORIGIN if headers is None else headers)
    connected, _ = await comm.connect()
    assert connected
    return comm


async def send(comm: WebsocketCommunicator, frame: dict[str, Any]) -> None:
    await comm.send_to(text_data=json.dumps(frame))


async def closed_with(comm: WebsocketCommunicator, timeout: float = 3) -> int:
    """Drain frames until the server closes; return the close code."""
    while True:
        out = await comm.receive_output(timeout=timeout)
        if out["type"] == "websocket.close":
            return int(out.get("code", 1000))


@sync_to_async
def staff_token(role: str = Role.NURSE, username: str = "ws_nurse") -> tuple[Any, str, Any]:
    persona = make_staff(role, username)
    issued = services.token_issue(user=persona.user)
    return persona.user, issued.raw, issued.token


async def authed(token: str) -> WebsocketCommunicator:
    comm = await connect()
    await send(comm, {"type": "auth", "id": "a1", "token": token})
    reply = await comm.receive_json_from(timeout=3)
    assert reply["type"] == "auth.ok" and reply["reply_to"] == "a1", reply
    return comm


async def test_auth_ping_and_own_topic() -> None:
    user, token, _ = await staff_token()
    comm = await authed(token)
    await send(comm, {"type": "ping", "id": "p"})
    assert await comm.receive_json_from() == {"type": "pong", "reply_to": "p"}
    await send(comm, {"type": "subscribe", "id": "s", "topic": f"user:{user.pk}"})
    assert (await comm.receive_json_from())["ok"] is True
    await sync_to_async(publish)(f"user:{user.pk}", "x.y", {"n": 1})
    event = await comm.receive_json_from(timeout=3)
    assert event == {"type": "event", "topic": f"user:{user.pk}", "event": "x.y", "data": {"n": 1}}
    await comm.disconnect()


async def test_a_foreign_browser_origin_is_refused_at_the_handshake() -> None:
    comm = WebsocketCommunicator(application, "/ws/", headers=[(b"origin", b"https://evil.example")])
    connected, _ = await comm.connect()
    assert not connected


async def test_a_client_without_origin_needs_a_ticket() -> None:
    _, token, live = await staff_token()
    comm = await connect(headers=[])
    await send(comm, {"type": "auth", "token": token})
    assert await closed_with(comm) == 4001

    ticket = await sync_to_async(services.realtime_ticket_issue)(token=live)
    comm = await connect(headers=[])
    await send(comm, {"type": "auth", "id": "1", "ticket": ticket})
    assert (await comm.receive_json_from(timeout=3))["type"] == "auth.ok"
    await comm.disconnect()
    # Tickets are single-use.
    comm = await connect(headers=[])
    await send(comm, {"type": "auth", "ticket": ticket})
    assert await closed_with(comm) == 4001


async def test_the_ticket_endpoint_issues_single_use_tickets(live_api_token: Any = None) -> None:
    _, token, _ = await staff_token()
    from django.test import AsyncClient

    r = await AsyncClient().post("/api/v1/realtime/ticket", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json()["expires_in"] == 60
    comm = await connect(headers=[])
    await send(comm, {"type": "auth", "id": "1", "ticket": r.json()["ticket"]})
    assert (await comm.receive_json_from(timeout=3))["type"] == "auth.ok"
    await comm.disconnect()


async def test_bad_credentials_close_with_4001() -> None:
    for frame in [{"type": "auth", "token": "nope"}, {"type": "ping"}, {"type": "auth"}]:
        comm = await connect()
        await send(comm, frame)
        assert await closed_with(comm) == 4001


async def test_the_auth_deadline_closes_silent_sockets(settings: Any) -> None:
    settings.WS_AUTH_TIMEOUT_SECONDS = 0.5
    comm = await connect()
    started = time.monotonic()
    assert await closed_with(comm, timeout=3) == 4001
    assert time.monotonic() - started < 2.5


async def test_an_oversized_frame_closes_with_4009() -> None:
    _, token, _ = await staff_token()
    comm = await authed(token)
    await comm.send_to(text_data=json.dumps({"type": "ping", "pad": "x" * (64 * 1024)}))
    assert await closed_with(comm) == 4009


async def test_a_flood_closes_with_4008() -> None:
    _, token, _ = await staff_token()
    comm = await authed(token)
    for n in range(200):
        await send(comm, {"type": "ping", "id": str(n)})
    assert await closed_with(comm) == 4008


async def test_non_json_is_a_protocol_error() -> None:
    _, token, _ = await staff_token()
    comm = await authed(token)
    await comm.send_to(text_data="{not json")
    assert await closed_with(comm) == 4011


async def test_unauthorised_topics_are_refused() -> None:
    _, token, _ = await staff_token()
    other, _, _ = await staff_token(username="ws_other")
    comm = await authed(token)
    for topic, code in [
        (f"user:{other.pk}", "topic.forbidden"),
        ("nosuchkind:1", "topic.forbidden"),
        ("bad topic", "topic.invalid"),
    ]:
        await send(comm, {"type": "subscribe", "id": "s", "topic": topic})
        reply = await comm.receive_json_from()
        assert reply["type"] == "error" and reply["code"] == code, reply
    # An event on the refused topic never arrives.
    await sync_to_async(publish)(f"user:{other.pk}", "x", {})
    assert await comm.receive_nothing(timeout=0.5)
    await comm.disconnect()


@pytest.mark.parametrize("how", ["disable", "logout", "role_change", "logout_all", "admin_revoke"])
async def test_ending_a_session_closes_the_socket_within_5s(how: str) -> None:
    user, token, live = await staff_token()
    comm = await authed(token)
    admin = await sync_to_async(make_staff)(Role.SYSADMIN if how == "disable" else Role.SECADMIN, "ws_admin")
    started = time.monotonic()
    if how == "disable":
        await sync_to_async(services.user_set_active)(actor=admin.user, user=user, active=False)
    elif how == "logout":
        await sync_to_async(services.token_revoke)(token=live, reason="logout")
    elif how == "logout_all":
        await sync_to_async(services.user_logout_everywhere)(user=user)
    elif how == "admin_revoke":
        await sync_to_async(services.user_revoke_sessions)(actor=admin.user, user=user)
    else:
        await sync_to_async(services.user_set_role)(actor=admin.user, user=user, role=Role.THERAPIST)
    assert await closed_with(comm, timeout=5) == 4010
    assert time.monotonic() - started < 5
    # And the token cannot open a new one.
    comm = await connect()
    await send(comm, {"type": "auth", "token": token})
    assert await closed_with(comm) == 4001
    await asyncio.sleep(0)


async def test_a_password_change_closes_the_other_sessions_sockets_not_this_one() -> None:
    user, token, live = await staff_token()
    other = (await sync_to_async(services.token_issue)(user=user)).raw
    here, there = await authed(token), await authed(other)
    started = time.monotonic()
    await sync_to_async(services.password_change)(
        user=user, old_password=STRONG, new_password="Another-Pass-9", keep=live
    )
    assert await closed_with(there, timeout=5) == 4010
    assert time.monotonic() - started < 5
    await send(here, {"type": "ping", "id": "p"})
    assert await here.receive_json_from(timeout=3) == {"type": "pong", "reply_to": "p"}
    await here.disconnect()


async def test_presence_follows_the_socket() -> None:
    from hub.realtime import presence

    user, token, _ = await staff_token()
    assert user.pk not in await sync_to_async(presence.online)([user.pk])
    comm = await authed(token)
    assert user.pk in await sync_to_async(presence.online)([user.pk])
    # A second device: closing one socket leaves the user online.
    other = await authed(token)
    await comm.disconnect()
    assert user.pk in await sync_to_async(presence.online)([user.pk])
    await other.disconnect()
    assert user.pk not in await sync_to_async(presence.online)([user.pk])

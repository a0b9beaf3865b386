"""Media grants on the hub side (the media node only verifies): room grants for
clients, and the authorisers of the node's RTMP and HTTP-FLV/HLS ports.

Signed with ``hub.crypto.grant_key()``, the ``grant/v1`` key derived by
``hub.signing`` (ADR 0034): the node is handed that key and verifies with
``media_engine.grants``, the same format without the hub."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings

from hub.crypto import grant_key
from media_engine.grants import sign_grant, verify_grant


def room_grant(*, room_id: str, peer_id: str, role: str, publish: bool, subscribe: bool) -> str:
    """A grant for the media node: this peer may publish/subscribe in this room, briefly."""
    payload = {
        "purpose": "room",
        "room": room_id,
        "peer": peer_id,
        "role": role,
        "publish": publish,
        "subscribe": subscribe,
    }
    return sign_grant(payload, key=grant_key(), ttl_seconds=settings.MEDIA_GRANT_TTL_SECONDS)


def verify(token: str, *, purpose: str) -> dict[str, Any]:
    return verify_grant(token, key=grant_key(), purpose=purpose)


def room_authorizer(action: str) -> Callable[[str, str], str]:
    """``authorize(room, grant) -> peer`` for the node's RTMP (``publish``) and
    HTTP-FLV/HLS (``subscribe``) ports: a room grant for that room and action."""
    from media_engine import MediaError

    def check(room_id: str, token: str) -> str:
        grant = verify(token, purpose="room")
        if grant.get("room") != room_id or not grant.get(action):
            raise MediaError("grant.invalid", "授权凭证与房间或操作不符")
        return str(grant["peer"])

    return check

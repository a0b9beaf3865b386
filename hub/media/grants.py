"""Keys and grant signing on the hub side (the media node only verifies)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings

from media_engine.grants import sign_grant, verify_grant


def _key_bytes(value: str) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    return raw if len(raw) >= 32 else value.encode()


def grant_key() -> bytes:
    return _key_bytes(settings.GRANT_SIGNING_KEY)


def manifest_key() -> bytes:
    """Seals recording manifests; derived so it differs from every other key."""
    return hmac.new(_key_bytes(settings.AUDIT_HMAC_KEY), b"recording-manifest/v1", hashlib.sha256).digest()


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


def replay_grant(*, recording_public_id: str, user_id: int) -> tuple[str, int]:
    """A grant embedded in an expiring replay URL; returns (token, exp)."""
    now = time.time()
    token = sign_grant(
        {"purpose": "replay", "rec": recording_public_id, "uid": user_id},
        key=grant_key(),
        ttl_seconds=settings.RECORDING_REPLAY_URL_TTL_SECONDS,
        now=now,
    )
    return token, int(now + settings.RECORDING_REPLAY_URL_TTL_SECONDS)


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

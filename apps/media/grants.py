"""Media grants on the hub side (the media node only verifies): room grants for
clients, and the authorisers of the node's RTMP and HTTP-FLV/HLS ports.

Signed with ``hub.crypto.grant_key()``, the ``grant/v1`` key derived by
``hub.signing`` (ADR 0034): the node is handed that key and verifies with
``media_engine.grants``, the same format without the hub.

Every grant a client gets carries the login session it was issued under
(``sid``, the ``AuthToken`` id): the hub refuses it once that session is no
longer live (WHIP/WHEP and the replay file view: :func:`session_live`), and at
logout the node is told to refuse it too and to end what it opened (``session.revoke`` from
:func:`apps.media.control.on_sessions_revoked`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings

from hub.crypto import grant_key
from hub.identity import identity
from media_engine.grants import sign_grant, verify_grant


def room_grant(*, room_id: str, peer_id: str, role: str, publish: bool, subscribe: bool, sid: int) -> str:
    """A grant for the media node: this peer may publish/subscribe in this room, briefly,
    for as long as login session ``sid`` (an ``AuthToken`` id) lives."""
    payload: dict[str, Any] = {
        "purpose": "room",
        "room": room_id,
        "peer": peer_id,
        "role": role,
        "publish": publish,
        "subscribe": subscribe,
        "sid": int(sid),
        # When it was issued (ms): a node refuses grants issued before the peer was removed
        # from the room (``peer.kick``) and admits those of a later membership.
        "iat": round(time.time(), 3),
    }
    return sign_grant(payload, key=grant_key(), ttl_seconds=settings.MEDIA_GRANT_TTL_SECONDS)


def verify(token: str, *, purpose: str) -> dict[str, Any]:
    return verify_grant(token, key=grant_key(), purpose=purpose)


def session_live(grant: dict[str, Any]) -> bool:
    """Whether the login session a verified grant was issued under is still live (a DB
    read: run it off the event loop). A grant without a session is refused."""
    sid = grant.get("sid")
    return isinstance(sid, int) and not isinstance(sid, bool) and identity().token_live(sid)


def grant_sid(grant: dict[str, Any]) -> str:
    """The login session a verified grant was issued under, as the node keys it ("" for none)."""
    sid = grant.get("sid")
    return str(sid) if isinstance(sid, int) and not isinstance(sid, bool) else ""


def grant_issued(grant: dict[str, Any]) -> float | None:
    """When a verified room grant was issued (Unix seconds), ``None`` if it does not say."""
    iat = grant.get("iat")
    return float(iat) if isinstance(iat, int | float) and not isinstance(iat, bool) else None


def room_authorizer(action: str) -> Callable[[str, str], tuple[str, str, float | None]]:
    """``authorize(room, grant) -> (peer, sid, issued)`` for the node's RTMP (``publish``)
    and HTTP-FLV/HLS (``subscribe``) ports: a room grant for that room and action. The node
    refuses a sid it was told is revoked, and a grant issued before the peer was removed
    from the room, and ends the connection at revocation or removal."""
    from media_engine import MediaError

    def check(room_id: str, token: str) -> tuple[str, str, float | None]:
        grant = verify(token, purpose="room")
        if grant.get("room") != room_id or not grant.get(action):
            raise MediaError("grant.invalid", "授权凭证与房间或操作不符")
        return str(grant["peer"]), grant_sid(grant), grant_issued(grant)

    return check

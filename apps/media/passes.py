"""Room passes: how a mini-program hands its video room to a ``web-view`` H5 page.

Alipay mini-programs have no ``live-pusher``; their video is the H5 page over WebRTC in
a ``web-view``, a browser context of its own without the mini-program's login. The
mini-program (logged in) asks ``POST /api/v1/media/rooms/{room}/pass`` for a **pass**:
one-time, valid :data:`settings.MEDIA_PASS_TTL_SECONDS` (60 s), for that room only,
kept hashed in the cache. The web-view page redeems it once (``POST
/media/passes/redeem``) for a **room session**: a grant-key-signed token (purpose
``room_pass``) naming the user, the room and the login session it came from, valid
``MEDIA_PASS_SESSION_TTL_SECONDS``. With it the page fetches room grants
(``POST /media/rooms/<room>/grant``, ``Authorization: Pass <session>``) as the app
does with its login: the same membership check and audit (``media.room_grant``, via
``web-view``), refused once the login session ended or the member was removed.

The web-view never holds a login: the pass in its URL is spent on first use (a URL
seen in a log or a referrer is worth nothing), and the room session opens that one
room's media and nothing else of the account.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.conf import settings
from django.core.cache import cache

from apps.accounts.models import User
from hub.crypto import grant_key
from hub.identity import identity
from media_engine.grants import GrantError, sign_grant, verify_grant

from .access import RoomAccess, refuse_closed, room_access, room_member
from .errors import MediaCode, MediaError

_KEY = "media:pass:"


def _key(raw: str) -> str:
    return _KEY + hashlib.sha256(raw.encode()).hexdigest()


def pass_issue(*, user: Any, sid: int, room_id: str) -> str:
    """A one-time pass into ``room_id`` for the web-view (the user must be a member now)."""
    refuse_closed(room_member(user, room_id))
    raw = secrets.token_urlsafe(24)
    cache.set(_key(raw), {"user": user.pk, "room": room_id, "sid": int(sid)}, settings.MEDIA_PASS_TTL_SECONDS)
    return raw


def pass_redeem(raw: str) -> dict[str, Any]:
    """Spend a pass (once): ``{"room_id", "session", "expires_in"}``; refused if unknown,
    expired or already used (``media.pass_invalid``)."""
    key = _key(raw) if isinstance(raw, str) and 16 <= len(raw) <= 64 else ""
    data = cache.get(key) if key else None
    # Only the one redeemer whose delete removed the key gets the session.
    if not isinstance(data, dict) or not cache.delete(key):
        raise MediaError(MediaCode.PASS_INVALID)
    ttl = settings.MEDIA_PASS_SESSION_TTL_SECONDS
    session = sign_grant(
        {"purpose": "room_pass", "user": data["user"], "room": data["room"], "sid": data["sid"]},
        key=grant_key(),
        ttl_seconds=ttl,
    )
    return {"room_id": data["room"], "session": session, "expires_in": ttl}


def pass_access(session: str, room_id: str) -> tuple[RoomAccess, int]:
    """The room access a room session gives (checked now, audited), and its login session id."""
    try:
        claims = verify_grant(session, key=grant_key(), purpose="room_pass")
    except GrantError:
        raise MediaError(MediaCode.PASS_INVALID) from None
    if claims.get("room") != room_id:
        raise MediaError(MediaCode.PASS_INVALID)
    sid, user_id = int(claims.get("sid") or 0), int(claims.get("user") or 0)
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None or not sid or not identity().token_live(sid):
        raise MediaError(MediaCode.PASS_INVALID, "登录已退出，请回到小程序重新进入视频问诊")
    return room_access(user, room_id, via="web-view"), sid

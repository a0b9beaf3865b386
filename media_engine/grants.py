"""Short-lived grants signed by the hub, verified by the media node.

A grant is ``base64url(json payload) "." base64url(HMAC-SHA256)``; the payload
carries its purpose (``room``, ``node`` or ``replay``), subject and ``exp``
(Unix seconds). The engine trusts nothing else: no database, no session.

The engine imports nothing of the hub, so this module keeps a same-format copy
of ``hub.signing``: :func:`canonical_json` gives the same bytes, :func:`mac` is
the same HMAC-SHA256. Keys come from the hub already derived per purpose (the
grant key for grants, the manifest key for manifests; ADR 0034).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any


class GrantError(Exception):
    """The grant is malformed, forged, expired or for something else."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def canonical_json(data: dict[str, Any]) -> bytes:
    """Sorted keys, compact separators, UTF-8: the bytes ``hub.signing.canonical_json`` gives."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def mac(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA256 of ``message`` under an already derived ``key``."""
    return hmac.new(key, message, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_grant(payload: dict[str, Any], *, key: bytes, ttl_seconds: int, now: float | None = None) -> str:
    """Sign ``payload`` with an expiry ``ttl_seconds`` from now."""
    body = {**payload, "exp": int((now if now is not None else time.time()) + ttl_seconds)}
    raw = canonical_json(body)
    return f"{_b64(raw)}.{_b64(mac(key, raw))}"


def verify_grant(token: str, *, key: bytes, purpose: str, now: float | None = None) -> dict[str, Any]:
    """The payload of a valid, unexpired grant for ``purpose``; raises :class:`GrantError`."""
    try:
        raw_b64, mac_b64 = token.split(".", 1)
        raw = _unb64(raw_b64)
        claimed = _unb64(mac_b64)
    except (ValueError, TypeError) as exc:
        raise GrantError("grant.malformed", "授权凭证格式不正确") from exc
    if not hmac.compare_digest(claimed, mac(key, raw)):
        raise GrantError("grant.invalid", "授权凭证无效")
    payload: dict[str, Any] = json.loads(raw)
    if payload.get("purpose") != purpose:
        raise GrantError("grant.invalid", "授权凭证无效")
    if int(payload.get("exp", 0)) < (now if now is not None else time.time()):
        raise GrantError("grant.expired", "授权凭证已过期")
    return payload

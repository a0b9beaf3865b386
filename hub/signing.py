"""One canonical JSON, one key derivation, one HMAC for everything the hub signs.

Every signer names a purpose; its key is ``HMAC-SHA256(root, purpose)``, so a
signature made for one purpose never verifies for another, even where two
purposes share a root (ADR 0034). There are two roots, by lifetime:
``AUDIT_HMAC_KEY`` for what must still verify years later (audit chain,
signed psych reviews, recording manifests) and ``GRANT_SIGNING_KEY`` for
short-lived grants, which can be rotated at the cost of the grants in flight.

``media_engine`` imports nothing of the hub: it keeps a same-format copy
(``media_engine.grants.canonical_json``) and gets its keys from
:func:`derive_key` through the hub (``hub.crypto.grant_key``,
``recordings.storage.manifest_key``).
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from django.conf import settings


class Purpose(enum.StrEnum):
    """One purpose string per use. The string is the key derivation's input:
    changing it changes the key and invalidates everything signed before."""

    AUDIT_CHAIN = "audit-chain/v1"
    AUDIT_HEAD = "audit-head/v1"  # the chain's tip: last id and hash, so a cut tail is detected
    PSYCH_REVIEW = "psych-review/v1"
    GRANT = "grant/v1"  # media room and node grants, recording replay grants
    RECORDING_MANIFEST = "recording-manifest/v1"


# Which root secret (a setting name) each purpose derives from.
_ROOTS: dict[Purpose, str] = {
    Purpose.AUDIT_CHAIN: "AUDIT_HMAC_KEY",
    Purpose.AUDIT_HEAD: "AUDIT_HMAC_KEY",
    Purpose.PSYCH_REVIEW: "AUDIT_HMAC_KEY",
    Purpose.RECORDING_MANIFEST: "AUDIT_HMAC_KEY",
    Purpose.GRANT: "GRANT_SIGNING_KEY",
}


def canonical_json(data: Mapping[str, Any]) -> bytes:
    """Sorted keys, compact separators, UTF-8 (no ASCII escapes). The same bytes
    as ``media_engine.grants.canonical_json``."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def key_bytes(value: str) -> bytes:
    """A key setting as bytes: base64 of at least 32 bytes, else the text itself."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    return raw if len(raw) >= 32 else value.encode()


def derive_key(purpose: Purpose) -> bytes:
    """The 32-byte key of ``purpose``: HMAC-SHA256 of the purpose string under
    its root (the roots are 32 random bytes, so HMAC is a sound KDF here)."""
    root = key_bytes(getattr(settings, _ROOTS[Purpose(purpose)]))
    return hmac.new(root, str(purpose).encode(), hashlib.sha256).digest()


def seal(payload: Mapping[str, Any], purpose: Purpose, *, prefix: str = "") -> str:
    """Hex HMAC-SHA256 under ``purpose``'s key over ``prefix`` followed by the
    canonical JSON of ``payload`` (the audit chain puts ``"<prev_hash>|"`` there)."""
    message = prefix.encode() + canonical_json(payload)
    return hmac.new(derive_key(purpose), message, hashlib.sha256).hexdigest()


def verify(payload: Mapping[str, Any], signature: str, purpose: Purpose, *, prefix: str = "") -> bool:
    """True when ``signature`` is :func:`seal` of this payload for this purpose."""
    return hmac.compare_digest(seal(payload, purpose, prefix=prefix), signature)

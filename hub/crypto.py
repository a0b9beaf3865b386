"""Field encryption (AES-256-GCM) and keyed lookup hashes for patient identifiers.

Ciphertext format: ``v1:<base64(nonce || ciphertext || tag)>``. The version prefix
lets a later key rotation re-encrypt row by row. Lookups never decrypt: they
compare an HMAC-SHA256 of the normalised value under a separate key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

from hub.signing import Purpose, derive_key
from hub.signing import key_bytes as key_bytes  # re-exported: key decoding lives with the derivation

_PREFIX = "v1:"


class DecryptionError(ValueError):
    """A value that does not open under this context and key: not ``v1:`` ciphertext
    (e.g. plaintext left from before a column was encrypted), ciphertext of another
    column or row moved here, a truncated value, or another key."""

    def __init__(self, context: str, why: str) -> None:
        self.context = context
        super().__init__(f"cannot decrypt {context}: {why}")


def is_ciphertext(value: object) -> bool:
    return isinstance(value, str) and value.startswith(_PREFIX)


@lru_cache(maxsize=4)
def _aead(key_b64: str) -> AESGCM:
    key = base64.b64decode(key_b64)
    if len(key) != 32:
        raise ValueError("FIELD_ENCRYPTION_KEY must be 32 bytes, base64-encoded")
    return AESGCM(key)


def encrypt(plain: str, *, context: str) -> str:
    """Encrypt ``plain``; ``context`` (e.g. ``"patient.id_number"``) is bound as
    associated data so a ciphertext cannot be moved to another column."""
    nonce = os.urandom(12)
    sealed = _aead(settings.FIELD_ENCRYPTION_KEY).encrypt(nonce, plain.encode(), context.encode())
    return _PREFIX + base64.b64encode(nonce + sealed).decode()


def decrypt(token: str, *, context: str) -> str:
    """The plaintext of ``token``; :class:`DecryptionError` (a ``ValueError``) when it
    is not ciphertext of this ``context`` under the current key."""
    if not is_ciphertext(token):
        raise DecryptionError(context, "not v1 ciphertext")
    try:
        raw = base64.b64decode(token[len(_PREFIX) :], validate=True)
    except ValueError:
        raise DecryptionError(context, "malformed ciphertext") from None
    if len(raw) < 12 + 16:
        raise DecryptionError(context, "truncated ciphertext")
    try:
        plain = _aead(settings.FIELD_ENCRYPTION_KEY).decrypt(raw[:12], raw[12:], context.encode())
    except InvalidTag:
        raise DecryptionError(context, "authentication failed (ciphertext of another column, or another key)") from None
    return plain.decode()


def lookup_hash(value: str, *, context: str) -> str:
    key = base64.b64decode(settings.LOOKUP_HASH_KEY)
    return hmac.new(key, f"{context}\x00{value}".encode(), hashlib.sha256).hexdigest()


def grant_key() -> bytes:
    """Signs the short-lived grants the hub issues (media rooms and nodes, recording
    replay): the ``grant`` purpose's derived key (``hub.signing``, ADR 0034)."""
    return derive_key(Purpose.GRANT)


def token_hash(token: str) -> str:
    """Bearer tokens and tickets are high-entropy: a plain SHA-256 is enough."""
    return hashlib.sha256(token.encode()).hexdigest()


def mask_phone(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 7 else "****"


def mask_id_number(id_number: str) -> str:
    return id_number[:3] + "*" * (len(id_number) - 7) + id_number[-4:] if len(id_number) > 7 else "****"


def mask_name(name: str) -> str:
    return name[0] + "*" * (len(name) - 1) if len(name) > 1 else name

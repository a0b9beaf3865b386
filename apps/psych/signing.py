"""The doctor's signature on a scale result: sealed by services, checked by selectors.

New signatures are ``hub.signing.seal`` under the ``psych-review/v1`` derived key
(ADR 0034). Reviews signed before that change used
``SHA-256("psych.review|" + AUDIT_HMAC_KEY)`` as the HMAC key over the same
canonical JSON; :func:`review_signature_valid` still accepts them, so a report
signed then keeps ``signature_valid: true``. Nothing is signed the old way any more.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any

from django.conf import settings

from hub import signing

from .models import Result


def _payload(result: Result, note: str, signer_id: int) -> dict[str, Any]:
    """What the doctor signs: the frozen scores and answers plus the note."""
    return {
        "result": result.pk,
        "answers": result.answers,
        "raw": result.raw_score,
        "standard": result.standard_score,
        "band": result.band_code,
        "norm": result.norm,
        "note": note,
        "signer": signer_id,
    }


def review_signature(result: Result, note: str, signer_id: int) -> str:
    """HMAC over what the doctor signs (``hub.signing``, purpose ``psych-review/v1``)."""
    return signing.seal(_payload(result, note, signer_id), signing.Purpose.PSYCH_REVIEW)


def legacy_review_signature(result: Result, note: str, signer_id: int) -> str | None:
    """The signature as made before ADR 0034 (verification only); None when the key
    setting is not base64, as the old code could not have signed under it."""
    try:
        root = base64.b64decode(settings.AUDIT_HMAC_KEY)
    except (binascii.Error, ValueError):
        return None
    key = hashlib.sha256(b"psych.review|" + root).digest()
    body = signing.canonical_json(_payload(result, note, signer_id))
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def review_signature_valid(result: Result, note: str, signer_id: int, signature: str) -> bool:
    """True for a signature of this result, note and signer: the current derivation or
    the one before ADR 0034."""
    if signing.verify(_payload(result, note, signer_id), signature, signing.Purpose.PSYCH_REVIEW):
        return True
    legacy = legacy_review_signature(result, note, signer_id)
    return legacy is not None and hmac.compare_digest(legacy, signature)

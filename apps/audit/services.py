"""Writing and verifying the audit chain."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from hub import signing
from hub.context import current_request_meta

from .models import AuditEvent, AuditHead

GENESIS = "0" * 64


def _digest(prev_hash: str, fields: dict[str, Any]) -> str:
    """HMAC-SHA256 over ``prev_hash|canonical JSON`` under the audit chain's derived key."""
    return signing.seal(fields, signing.Purpose.AUDIT_CHAIN, prefix=f"{prev_hash}|")


def _legacy_digest(prev_hash: str, fields: dict[str, Any]) -> str:
    """The same message under the root key itself: how rows were chained before
    ADR 0034. Only the verifier uses it, and only for the chain's leading rows."""
    message = f"{prev_hash}|".encode() + signing.canonical_json(fields)
    return hmac.new(base64.b64decode(settings.AUDIT_HMAC_KEY), message, hashlib.sha256).hexdigest()


def head_mac(last_id: int, last_hash: str) -> str:
    return signing.seal({"last_id": last_id, "last_hash": last_hash}, signing.Purpose.AUDIT_HEAD)


def _fields(event: AuditEvent) -> dict[str, Any]:
    return {
        "at": event.at.isoformat(),
        "actor_id": event.actor_id,
        "actor_username": event.actor_username,
        "actor_role": event.actor_role,
        "ip": event.ip,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "result": event.result,
        "request_id": event.request_id,
        "detail": event.detail,
    }


def audit_record(
    *,
    action: str,
    actor: Any = None,
    object_type: str = "",
    object_id: Any = "",
    result: str = AuditEvent.Result.OK,
    detail: dict[str, Any] | None = None,
    actor_username: str = "",
) -> AuditEvent:
    """Append one audit record. Runs inside the caller's transaction when there is
    one, so a failed audit write rolls the audited action back with it.

    ``detail`` must never hold raw patient data, tokens or passwords."""
    meta = current_request_meta()
    with transaction.atomic():
        head, _ = AuditHead.objects.select_for_update().get_or_create(id=1, defaults={"last_hash": GENESIS})
        event = AuditEvent(
            at=timezone.now(),
            actor_id=getattr(actor, "id", None),
            actor_username=actor_username or getattr(actor, "username", "") or "",
            actor_role=getattr(actor, "role", "") or "",
            ip=meta.ip,
            action=action,
            object_type=object_type,
            object_id=str(object_id) if object_id not in (None, "") else "",
            result=result,
            request_id=meta.request_id,
            detail=detail or {},
            prev_hash=head.last_hash,
        )
        # Round-trip the detail through JSON so the verifier recomputes exactly
        # what was hashed from what the database gives back.
        event.detail = json.loads(json.dumps(event.detail, default=str))
        event.hash = _digest(event.prev_hash, _fields(event))
        event.save()
        head.last_hash = event.hash
        head.last_id = event.id
        head.mac = head_mac(event.id, event.hash)
        head.save(update_fields=["last_hash", "last_id", "mac"])
    return event


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_bad_id: int | None
    reason: str = ""


def audit_verify_chain() -> VerifyResult:
    """Walk the chain from the genesis and name the first row whose hash or link
    does not match. A deleted row shows up as a broken link at its successor; a
    deleted tail shows up against the head.

    Rows written before ADR 0034 were hashed under the root key; they are
    accepted only as the chain's leading run: once a row verifies under the
    derived key, every later row must too."""
    prev = GENESIS
    checked = 0
    last_id = 0
    legacy_allowed = True
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=2000):
        checked += 1
        if event.prev_hash != prev:
            return VerifyResult(False, checked, event.id, "link")
        fields = _fields(event)
        if hmac.compare_digest(_digest(event.prev_hash, fields), event.hash):
            legacy_allowed = False
        elif not (legacy_allowed and hmac.compare_digest(_legacy_digest(event.prev_hash, fields), event.hash)):
            return VerifyResult(False, checked, event.id, "hash")
        prev = event.hash
        last_id = event.id
    head = AuditHead.objects.filter(id=1).first()
    if head is None:
        # Rows without a head: the head was deleted (it is written with the first row).
        return VerifyResult(checked == 0, checked, None if checked == 0 else last_id, "" if checked == 0 else "head")
    if not hmac.compare_digest(head_mac(head.last_id, head.last_hash), head.mac or ""):
        # Rewritten without the key (to hide a cut tail, say): the tip cannot be trusted.
        return VerifyResult(False, checked, head.last_id or None, "head_mac")
    if head.last_hash != prev or head.last_id != last_id:
        return VerifyResult(False, checked, head.last_id or None, "head")
    return VerifyResult(True, checked, None)

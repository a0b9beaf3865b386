"""An experiment, never the product: ``audit_record`` without the chain's head row.

With ``BENCH_UNCHAINED_AUDIT=1`` (``checkout_callbacks.py --experiment-unchained-audit``)
the bench app swaps ``apps.audit.services.audit_record`` (and every loaded module's
binding of it) for this copy. It writes the same row with the same per-row work (JSON
round trip, HMAC), but links it to a random ``prev_hash`` instead of taking
``AuditHead`` ``FOR UPDATE``. The chain no longer verifies. The only point is to
measure how much of the burst's latency is that one row lock."""

from __future__ import annotations

import json
import secrets
import sys
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.audit import services as audit_services
from apps.audit.models import AuditEvent
from hub.context import current_request_meta


def audit_record_unchained(
    *,
    action: str,
    actor: Any = None,
    object_type: str = "",
    object_id: Any = "",
    result: str = AuditEvent.Result.OK,
    detail: dict[str, Any] | None = None,
    actor_username: str = "",
) -> AuditEvent:
    meta = current_request_meta()
    with transaction.atomic():
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
            prev_hash=secrets.token_hex(32),
        )
        event.detail = json.loads(json.dumps(event.detail, default=str))
        event.hash = audit_services._digest(event.prev_hash, audit_services._fields(event))
        event.save()
    return event


def install() -> int:
    """Rebind ``audit_record`` everywhere it was imported; returns how many modules."""
    original = audit_services.audit_record
    patched = 0
    for module in list(sys.modules.values()):
        if getattr(module, "audit_record", None) is original:
            module.audit_record = audit_record_unchained  # type: ignore[attr-defined]
            patched += 1
    return patched

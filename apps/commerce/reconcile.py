"""Reconciliation with the providers.

- ``pending_payments_settle``: payments prepaid more than
  COMMERCE_PENDING_QUERY_MINUTES ago with no notice are queried at the provider
  and, when paid, applied like a notice (so a lost notice loses no payment).
- ``bill_reconcile``: the provider's bill of one Beijing day against our
  payments and refunds; every difference (missing locally, missing at the
  provider, amount mismatch) is a line of a ``ReconciliationReport``."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.audit.services import audit_record

from .models import Order, Payment, ReconciliationLine, ReconciliationReport, Refund
from .services import payment_notice_apply, provider_for, refund_submit

log = logging.getLogger(__name__)
SH = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")


def pending_payments_settle(*, now: dt.datetime | None = None, limit: int = 200) -> dict[str, int]:
    now = now or timezone.now()
    cutoff = now - dt.timedelta(minutes=settings.COMMERCE_PENDING_QUERY_MINUTES)
    rows = list(
        Payment.objects.filter(
            status__in=[Payment.Status.PENDING, Payment.Status.CLOSED],
            created_at__lte=cutoff,
            transaction_id__isnull=True,
            order__status__in=[Order.Status.CREATED, Order.Status.CANCELLED],
            order__paid_fen=0,
        )
        .select_related("order")
        .order_by("created_at")[:limit]
    )
    out = {"queried": 0, "settled": 0, "unpaid": 0, "failed": 0}
    for payment in rows:
        out["queried"] += 1
        try:
            notice = provider_for(payment.provider).query(payment.order.order_no)
            if notice is None:
                out["unpaid"] += 1
                continue
            outcome = payment_notice_apply(notice)
            out["settled" if outcome.result in ("recorded", "late_refund") else "unpaid"] += 1
        except Exception:
            log.warning("querying order %s at %s failed", payment.order.order_no, payment.provider, exc_info=True)
            out["failed"] += 1
    return out


def refunds_resubmit(*, now: dt.datetime | None = None, limit: int = 100) -> dict[str, int]:
    """Refunds approved but never accepted by the provider (its call failed, or the
    worker died before it) are sent again after COMMERCE_PENDING_QUERY_MINUTES;
    the provider deduplicates by our refund number."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(minutes=settings.COMMERCE_PENDING_QUERY_MINUTES)
    ids = list(
        Refund.objects.filter(status=Refund.Status.PROCESSING, provider_refund_id="", decided_at__lte=cutoff)
        .order_by("decided_at")
        .values_list("pk", flat=True)[:limit]
    )
    ids += list(
        Refund.objects.filter(
            status=Refund.Status.PROCESSING, provider_refund_id="", decided_at__isnull=True, created_at__lte=cutoff
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    return {"resubmitted": len(ids), "settled": sum(1 for pk in ids if refund_submit(pk) != Refund.Status.PROCESSING)}


def _day_range(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(0), tzinfo=SH)
    return start, start + dt.timedelta(days=1)


def bill_reconcile(*, provider: str, day: dt.date, actor: Any = None) -> ReconciliationReport:
    """Compare the provider's bill of ``day`` (Beijing) with our records of that day."""
    bill = provider_for(provider).bill(day)
    start, end = _day_range(day)
    charges: dict[str, tuple[str, int]] = {
        p.transaction_id or "": (p.order.order_no, p.amount_fen)
        for p in Payment.objects.filter(
            provider=provider, status=Payment.Status.SUCCEEDED, paid_at__gte=start, paid_at__lt=end
        ).select_related("order")
    }
    refunds: dict[str, tuple[str, int]] = {
        r.refund_no: (r.order.order_no, r.amount_fen)
        for r in Refund.objects.filter(
            order__provider=provider, status=Refund.Status.SUCCEEDED, settled_at__gte=start, settled_at__lt=end
        ).select_related("order")
    }
    lines: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for b in bill:
        key = b.transaction_id if b.kind == "charge" else (b.refund_no or "")
        local = (charges if b.kind == "charge" else refunds).get(key)
        seen.add((b.kind, key))
        if local is None:
            lines.append(
                {
                    "problem": "missing_local",
                    "kind": b.kind,
                    "order_no": b.order_no,
                    "reference": key,
                    "provider_fen": b.amount_fen,
                }
            )
        elif local[1] != b.amount_fen:
            lines.append(
                {
                    "problem": "amount_mismatch",
                    "kind": b.kind,
                    "order_no": b.order_no,
                    "reference": key,
                    "local_fen": local[1],
                    "provider_fen": b.amount_fen,
                }
            )
    for kind, table in (("charge", charges), ("refund", refunds)):
        for key, (order_no, amount) in table.items():
            if (kind, key) not in seen:
                lines.append(
                    {
                        "problem": "missing_provider",
                        "kind": kind,
                        "order_no": order_no,
                        "reference": key,
                        "local_fen": amount,
                    }
                )
    with transaction.atomic():
        report = ReconciliationReport.objects.create(
            provider=provider,
            day=day,
            bill_lines=len(bill),
            ledger_lines=len(charges) + len(refunds),
            differences=len(lines),
        )
        ReconciliationLine.objects.bulk_create([ReconciliationLine(report=report, **x) for x in lines])
        audit_record(
            action="commerce.reconcile",
            actor=actor,
            actor_username="" if actor else "system",
            object_type="commerce_reconciliation",
            object_id=report.pk,
            detail={"provider": provider, "day": day.isoformat(), "differences": len(lines)},
        )
    return report


def bills_reconcile_yesterday() -> int:
    yesterday = timezone.now().astimezone(SH).date() - dt.timedelta(days=1)
    done = 0
    for name in sorted(getattr(settings, "PAYMENT_PROVIDERS", {})):
        try:
            bill_reconcile(provider=name, day=yesterday)
            done += 1
        except Exception:
            log.warning("reconciling %s for %s failed", name, yesterday, exc_info=True)
    return done

"""The receipt lifecycle (ADR 0044): opened in the payment's transaction, issued at the
platform after commit, voided (冲红) by refunds, retried by a sweep so a busy platform
or a lost enqueue delays a receipt but never loses it.

Every status change goes through ``apps.core.lifecycle.transition`` with
``RECEIPT_TRANSITIONS``; the platform is called outside any row lock's long hold only
for the receipt being worked on (claimed under ``select_for_update``), and a receipt
is issued once per serial number at the platform, so a repeated call answers the same
receipt."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Callable

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core import lifecycle
from apps.core.lifecycle import AuditEntry

from ..errors import CommerceCode
from ..events import order_updated
from ..models import Order, Receipt
from ..states import RECEIPT_TRANSITIONS
from .base import ReceiptLine, ReceiptPlatformError, ReceiptRequest, get_platform

log = logging.getLogger(__name__)

Enqueuer = Callable[[str, int], None]
_enqueuer: Enqueuer | None = None


def enqueuer_register(enqueue: Enqueuer) -> None:
    """``enqueue(job, receipt_id)``, job "issue" or "void" (``tasks.enqueue_receipt``)."""
    global _enqueuer
    _enqueuer = enqueue


def _queue_on_commit(job: str, receipt_id: int) -> None:
    def run() -> None:
        if _enqueuer is None:
            log.warning("no receipt enqueuer registered; the sweep will %s receipt %s", job, receipt_id)
            return
        try:
            _enqueuer(job, receipt_id)
        except Exception:
            log.exception("enqueue of receipt %s %s failed; the sweep will do it", job, receipt_id)

    transaction.on_commit(run)


def enabled() -> bool:
    return bool(settings.RECEIPTS_PLATFORM)


def _transition(
    receipt: Receipt, action: str, *, fields: tuple[str, ...] = (), audit: AuditEntry | None = None
) -> None:
    lifecycle.transition(
        receipt,
        action,
        table=RECEIPT_TRANSITIONS,
        actor=None,
        code=CommerceCode.TRANSITION_REFUSED,
        fields=fields,
        audit=audit,
        publish=lambda r: [order_updated(r.order)],
    )


def _audit(action: str, receipt: Receipt, **detail: object) -> AuditEntry:
    return AuditEntry(
        action,
        "commerce_receipt",
        receipt.request_no,
        {"order_no": receipt.order.order_no, "amount_fen": receipt.amount_fen, **detail},
        actor_username="system",
    )


# --- opened by commerce (inside its transaction) -------------------------------------


def receipt_open(order: Order) -> Receipt | None:
    """A receipt for what ``order`` keeps (paid minus refunded), issued after commit."""
    amount = order.paid_fen - order.refunded_fen
    if not enabled() or amount <= 0:
        return None
    stamp = timezone.localtime().strftime("%Y%m%d")
    receipt = Receipt.objects.create(order=order, request_no=f"RC{stamp}{secrets.token_hex(6)}", amount_fen=amount)
    _queue_on_commit("issue", receipt.pk)
    return receipt


def receipts_after_refund(order: Order) -> None:
    """A refund settled: void what was issued; when money is kept, a new receipt for it.

    Called inside the refund's transaction with ``order`` locked and its refunded
    amount updated. A receipt not yet issued is cancelled (the new one replaces it)."""
    if not enabled():
        return
    for receipt in order.receipts.select_for_update().filter(
        status__in=[Receipt.Status.PENDING, Receipt.Status.FAILED, Receipt.Status.ISSUED]
    ):
        if receipt.status == Receipt.Status.ISSUED:
            receipt.void_reason = "退款冲红"
            _transition(receipt, "void", fields=("void_reason",))
            _queue_on_commit("void", receipt.pk)
        else:
            _transition(receipt, "cancel")
    receipt_open(order)


# --- the platform calls (worker) ------------------------------------------------------


def _request(receipt: Receipt) -> ReceiptRequest:
    order = receipt.order
    lines = []
    left = receipt.amount_fen
    # What the payer keeps, item by item (payable minus refunded), within the receipt's amount.
    for item in order.items.filter(payable_fen__gt=0).order_by("pk"):
        kept = min(item.payable_fen - item.refunded_fen, left)
        if kept > 0:
            lines.append(ReceiptLine(title=item.title[:40], amount_fen=kept))
            left -= kept
    if left > 0 or not lines:
        lines.append(ReceiptLine(title=order.title[:40], amount_fen=left or receipt.amount_fen))
    return ReceiptRequest(
        request_no=receipt.request_no,
        order_no=order.order_no,
        payer_name=order.patient.name,
        amount_fen=receipt.amount_fen,
        lines=tuple(lines),
        paid_at=order.paid_at or timezone.now(),
    )


def _backoff(attempts: int) -> dt.timedelta:
    return dt.timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


def receipt_issue(receipt_id: int, *, now: dt.datetime | None = None) -> str:
    """One attempt at issuing; returns the receipt's status afterwards. Safe to re-run."""
    now = now or timezone.now()
    with transaction.atomic():
        receipt = (
            Receipt.objects.select_for_update(skip_locked=True)
            .select_related("order", "order__patient")
            .filter(pk=receipt_id, status=Receipt.Status.PENDING, next_attempt_at__lte=now)
            .first()
        )
        if receipt is None:
            return str(Receipt.objects.filter(pk=receipt_id).values_list("status", flat=True).first() or "")
        receipt.attempts += 1
        try:
            platform = get_platform()
            issued = platform.issue(_request(receipt))
        except ReceiptPlatformError as exc:
            receipt.last_error = f"{exc.code} {exc.message}"[:200]
            if exc.retryable and receipt.attempts < settings.RECEIPTS_MAX_ATTEMPTS:
                receipt.next_attempt_at = now + _backoff(receipt.attempts)
                receipt.save(update_fields=["attempts", "last_error", "next_attempt_at"])
                log.warning("receipt %s attempt %s failed: %s", receipt.request_no, receipt.attempts, exc.code)
                return receipt.status
            _transition(
                receipt,
                "give_up",
                fields=("attempts", "last_error"),
                audit=_audit("commerce.receipt_failed", receipt, error=exc.code),
            )
            log.error("receipt %s failed for good: %s", receipt.request_no, exc.code)
            return receipt.status
        receipt.platform = platform.name
        receipt.code, receipt.number, receipt.check_code = issued.code, issued.number, issued.check_code
        receipt.view_url, receipt.issued_at, receipt.last_error = issued.view_url, issued.issued_at, ""
        _transition(
            receipt,
            "issue",
            fields=("attempts", "platform", "code", "number", "check_code", "view_url", "issued_at", "last_error"),
            audit=_audit("commerce.receipt_issued", receipt),
        )
        return receipt.status


def receipt_void(receipt_id: int, *, now: dt.datetime | None = None) -> str:
    """One attempt at voiding an issued receipt at the platform. Safe to re-run."""
    now = now or timezone.now()
    with transaction.atomic():
        receipt = (
            Receipt.objects.select_for_update(skip_locked=True)
            .select_related("order")
            .filter(pk=receipt_id, status=Receipt.Status.VOIDING, next_attempt_at__lte=now)
            .first()
        )
        if receipt is None:
            return str(Receipt.objects.filter(pk=receipt_id).values_list("status", flat=True).first() or "")
        receipt.attempts += 1
        try:
            voided_at = get_platform().void(
                request_no=receipt.request_no, code=receipt.code, number=receipt.number, reason=receipt.void_reason
            )
        except ReceiptPlatformError as exc:
            # A void cannot be given up: the money went back, so the receipt must not stay valid.
            receipt.last_error = f"{exc.code} {exc.message}"[:200]
            receipt.next_attempt_at = now + _backoff(receipt.attempts)
            receipt.save(update_fields=["attempts", "last_error", "next_attempt_at"])
            log.warning("receipt %s void attempt %s failed: %s", receipt.request_no, receipt.attempts, exc.code)
            return receipt.status
        receipt.voided_at, receipt.last_error = voided_at, ""
        _transition(
            receipt,
            "voided",
            fields=("attempts", "voided_at", "last_error"),
            audit=_audit("commerce.receipt_voided", receipt),
        )
        return receipt.status


def receipt_retry(*, staff: object, request_no: str) -> Receipt:
    """Staff try a failed receipt again (after the platform's problem was fixed)."""
    with transaction.atomic():
        receipt = Receipt.objects.select_for_update().select_related("order").get(request_no=request_no)
        receipt.attempts, receipt.next_attempt_at, receipt.last_error = 0, timezone.now(), ""
        lifecycle.transition(
            receipt,
            "retry",
            table=RECEIPT_TRANSITIONS,
            actor=staff,
            code=CommerceCode.TRANSITION_REFUSED,
            fields=("attempts", "next_attempt_at", "last_error"),
            audit=AuditEntry(
                "commerce.receipt_retry",
                "commerce_receipt",
                receipt.request_no,
                {"order_no": receipt.order.order_no},
            ),
            publish=lambda r: [order_updated(r.order)],
        )
        _queue_on_commit("issue", receipt.pk)
    return receipt


def receipts_sweep(*, now: dt.datetime | None = None, limit: int = 200) -> dict[str, int]:
    """Every receipt whose attempt is due: issued or voided now (backs up every enqueue)."""
    now = now or timezone.now()
    done = {"issued": 0, "voided": 0}
    due = Receipt.objects.filter(
        status__in=[Receipt.Status.PENDING, Receipt.Status.VOIDING], next_attempt_at__lte=now
    ).values_list("pk", "status")[:limit]
    for pk, status in list(due):
        if status == Receipt.Status.PENDING:
            done["issued"] += receipt_issue(pk, now=now) == Receipt.Status.ISSUED
        else:
            done["voided"] += receipt_void(pk, now=now) == Receipt.Status.VOIDED
    return done

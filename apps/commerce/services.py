"""Writes of commerce: checkout, payment and refund notices, cancel and expiry,
refund requests and approvals, fulfilment handlers.

Every status change goes through apps.core.lifecycle.transition with the tables
in states.py. Every money movement appends balanced ledger entries in the same
transaction (checked again by the database at commit) and one audit record
(ids and codes only). Calls to the provider happen outside the database
transaction that records the outcome: prepay under the order's row lock (so
concurrent identical checkouts share one prepay), close and refund after commit."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from apps.accounts.models import Patient, User
from apps.accounts.roles import Role
from apps.audit.services import audit_record
from apps.core import lifecycle
from apps.core.lifecycle import AuditEntry, Publication
from hub.errors import Forbidden, Invalid, NotFound

from . import events
from .errors import CommerceCode, CommerceError
from .models import Fulfilment, LedgerEntry, Order, OrderItem, Payment, Refund, RefundLine
from .money import yuan
from .payments.base import Channel, NoticeStatus, PaymentNotice, PaymentProvider, PrepayRequest, get_provider
from .pricing import PricedLine, price
from .registry import ItemEvent, item_kind
from .states import ORDER_TRANSITIONS, REFUND_TRANSITIONS

log = logging.getLogger(__name__)
REFUSED = CommerceCode.TRANSITION_REFUSED
MAX_LINES = 20
MAX_QUANTITY = 999


_overrides: dict[str, PaymentProvider] = {}


def provider_for(name: str) -> PaymentProvider:
    """The configured provider ``name`` (``payments.base.get_provider``), unless a
    caller running without the web server (the demo seeder) put another in place."""
    return _overrides.get(name) or get_provider(name)


@contextlib.contextmanager
def provider_override(provider: PaymentProvider) -> Iterator[None]:
    """Use ``provider`` for its name within the block (this thread's process)."""
    _overrides[provider.name] = provider
    try:
        yield
    finally:
        _overrides.pop(provider.name, None)


def _new_no(prefix: str) -> str:
    stamp = timezone.localtime().strftime("%Y%m%d%H%M%S")
    return f"{prefix}{stamp}{secrets.token_hex(5)}"  # 2 + 14 + 10 = 26 chars, [A-Za-z0-9]


# --- the task queue ---------------------------------------------------------------------
# How committed work reaches huey: ``tasks.enqueue``, registered when the app is ready
# (``apps.py``), so this module never imports the tasks that call it. Unset, or the
# queue down: the periodic sweeps (expiry, fulfilment retry) do the work all the same.
Enqueuer = Callable[[str, int, dt.datetime | None], None]
_enqueuer: Enqueuer | None = None


def enqueuer_register(enqueue: Enqueuer) -> None:
    """Set how committed work is queued: ``enqueue(job, order_id, eta)``, job "expire" or "fulfil"."""
    global _enqueuer
    _enqueuer = enqueue


def _queue(job: str, order_id: int, eta: dt.datetime | None) -> None:
    if _enqueuer is None:
        log.warning("no commerce enqueuer registered; the sweep will %s order %s", job, order_id)
        return
    try:
        _enqueuer(job, order_id, eta)
    except Exception:
        log.exception("enqueue of %s for order %s failed; the sweep will do it", job, order_id)


# --- ledger -------------------------------------------------------------------------


def _ledger(order: Order, entries: Sequence[tuple[str, int, str]]) -> None:
    """Append one movement's entries; they must sum to zero (the database checks
    the order's whole ledger again at commit)."""
    rows = [(k, a, r) for k, a, r in entries if a]
    if sum(a for _, a, _ in rows) != 0:
        raise RuntimeError(f"unbalanced ledger movement for order {order.pk}")
    now = timezone.now()
    LedgerEntry.objects.bulk_create(
        [LedgerEntry(order=order, kind=k, amount_fen=a, reference=r[:64], created_at=now) for k, a, r in rows]
    )


def _sale_entries(order: Order, transaction_id: str) -> list[tuple[str, int, str]]:
    entries: list[tuple[str, int, str]] = [
        (LedgerEntry.Kind.CHARGE, order.total_fen, order.order_no),
        (LedgerEntry.Kind.DISCOUNT, -order.discount_fen, ""),
    ]
    for item in order.items.filter(waived_fen__gt=0).order_by("pk"):
        entries.append((LedgerEntry.Kind.WAIVER, -item.waived_fen, item.waived_by))
    entries.append((LedgerEntry.Kind.GROUP, -order.group_fen, ""))
    entries.append((LedgerEntry.Kind.PAYMENT, -order.payable_fen, transaction_id))
    return entries


# --- publishing ---------------------------------------------------------------------


def _publish(order: Order) -> Iterable[Publication]:
    return [events.order_updated(order)]


def _order_transition(
    order: Order,
    action: str,
    *,
    actor: User | None,
    fields: Sequence[str] = (),
    reason: str = "",
    audit: AuditEntry | None = None,
) -> Order:
    order.updated_at = timezone.now()
    return lifecycle.transition(
        order,
        action,
        table=ORDER_TRANSITIONS,
        actor=actor,
        code=REFUSED,
        reason=reason,
        fields=[*fields, "updated_at"],
        audit=audit,
        publish=_publish,
    )


def _refund_transition(refund: Refund, action: str, *, actor: User | None, fields: Sequence[str] = ()) -> Refund:
    return lifecycle.transition(refund, action, table=REFUND_TRANSITIONS, actor=actor, code=REFUSED, fields=fields)


# --- checkout -----------------------------------------------------------------------


@dataclass(frozen=True)
class CheckoutLine:
    kind: str
    ref: str
    quantity: int = 1


def _request_hash(patient_id: int, lines: Sequence[CheckoutLine], channel: str, provider: str) -> str:
    body = json.dumps(
        [patient_id, channel, provider, sorted([x.kind, x.ref, x.quantity] for x in lines)], separators=(",", ":")
    )
    return hashlib.sha256(body.encode()).hexdigest()


def _quote(patient: Patient, lines: Sequence[CheckoutLine]) -> list[PricedLine]:
    out = []
    for line in lines:
        kind = item_kind(line.kind)
        if kind is None:
            raise CommerceError(CommerceCode.ITEM_KIND_UNKNOWN, kind=line.kind)
        if kind.can_checkout is not None:
            refusal = kind.can_checkout(patient, line.ref, line.quantity)
            if refusal:
                raise CommerceError(CommerceCode.ITEM_REFUSED, refusal, kind=line.kind, ref=line.ref)
        q = kind.quote(patient, line.ref, line.quantity)
        if q.unit_price_fen < 0 or q.payer not in OrderItem.Payer.values:
            raise RuntimeError(f"item kind {line.kind} quoted an invalid price")
        out.append(
            PricedLine(
                kind=line.kind,
                ref=line.ref,
                title=q.title[:128],
                quantity=line.quantity,
                unit_price_fen=q.unit_price_fen,
                discount_fen=q.discount_fen,
                payer=q.payer,
            )
        )
    return out


def _check_lines(lines: Sequence[CheckoutLine]) -> None:
    if not lines:
        raise CommerceError(CommerceCode.ITEMS_REQUIRED)
    if len(lines) > MAX_LINES:
        raise Invalid(f"一次最多购买{MAX_LINES}项", field="items")
    seen = set()
    for line in lines:
        if not (1 <= line.quantity <= MAX_QUANTITY):
            raise Invalid(f"数量须在1到{MAX_QUANTITY}之间", field="quantity")
        if not line.ref or len(line.ref) > 64:
            raise Invalid("请选择要购买的项目", field="ref")
        if (line.kind, line.ref) in seen:
            raise Invalid("同一项目请合并数量后下单", field="items")
        seen.add((line.kind, line.ref))


def order_checkout(
    *,
    payer: User,
    patient_id: int,
    lines: Sequence[CheckoutLine],
    client_key: str,
    channel: str = Channel.SANDBOX,
    provider: str = "",
    payer_openid: str | None = None,
) -> Order:
    """Create (or, for the same ``client_key``, find again) an order and prepay it.

    Idempotent per (payer, client_key): concurrent identical requests get the one
    order (the unique constraint decides the race) and the one prepay (taken under
    the order's row lock). The same key with different content is refused."""
    if payer.role != Role.PATIENT:
        raise Forbidden()
    if channel not in Channel.__members__.values():
        raise CommerceError(CommerceCode.CHANNEL_UNAVAILABLE, channel=channel)
    provider = provider or _provider_name(channel)
    client_key = client_key.strip()
    if not (8 <= len(client_key) <= 64):
        raise Invalid("下单请求标识无效", field="client_key")
    _check_lines(lines)
    digest = _request_hash(patient_id, lines, channel, provider)
    existing = Order.objects.filter(payer=payer, client_key=client_key).first()
    if existing is not None:
        return _same_request(existing, digest)
    patient = Patient.objects.filter(pk=patient_id, owner=payer, is_active=True).first()
    if patient is None:
        raise NotFound("就诊人")
    # An unknown or refused provider, or one that does not serve the channel, fails
    # before anything is written.
    channels = getattr(provider_for(provider), "channels", None)
    if channels is not None and channel not in channels:
        raise CommerceError(CommerceCode.CHANNEL_UNAVAILABLE, channel=channel)
    priced = price(_quote(patient, lines))
    now = timezone.now()
    try:
        with transaction.atomic():
            order = Order.objects.create(
                order_no=_new_no("CO"),
                patient=patient,
                payer=payer,
                title=_title(priced.lines),
                total_fen=priced.total_fen,
                discount_fen=priced.discount_fen,
                waived_fen=priced.waived_fen,
                group_fen=priced.group_fen,
                payable_fen=priced.payable_fen,
                channel=channel,
                provider=provider,
                client_key=client_key,
                request_hash=digest,
                expires_at=now + dt.timedelta(minutes=settings.COMMERCE_UNPAID_TIMEOUT_MINUTES),
                created_at=now,
                updated_at=now,
            )
            OrderItem.objects.bulk_create(
                [
                    OrderItem(
                        order=order,
                        kind=x.kind,
                        ref=x.ref,
                        title=x.title,
                        quantity=x.quantity,
                        unit_price_fen=x.unit_price_fen,
                        discount_fen=x.discount_fen,
                        payer=x.payer,
                        waived=bool(x.waived_by),
                        waived_by=x.waived_by,
                        waived_fen=x.waived_fen,
                        group_fen=x.group_fen,
                        payable_fen=x.payable_fen,
                    )
                    for x in priced.lines
                ]
            )
            audit_record(
                action="commerce.checkout",
                actor=payer,
                object_type="commerce_order",
                object_id=order.order_no,
                detail={"patient_id": patient.pk, "payable_fen": order.payable_fen, "waivers": priced.waivers},
            )
    except IntegrityError:
        # A concurrent request with the same key won the insert: answer with its order.
        existing = Order.objects.filter(payer=payer, client_key=client_key).first()
        if existing is None:
            raise
        return _same_request(existing, digest)
    if order.payable_fen == 0:
        _record_free(order, actor=payer)
    else:
        _schedule_expiry(order)
    return _ensure_prepay(order, payer_openid=payer_openid)


def _provider_name(channel: str) -> str:
    """The provider that serves ``channel`` (COMMERCE_CHANNEL_PROVIDERS), when it is
    configured; else the default (the sandbox in the embedded demo)."""
    name = settings.COMMERCE_CHANNEL_PROVIDERS.get(channel, "")
    if name and name in getattr(settings, "PAYMENT_PROVIDERS", {}):
        return str(name)
    return str(settings.COMMERCE_DEFAULT_PROVIDER)


def _same_request(order: Order, digest: str) -> Order:
    if order.request_hash != digest:
        raise CommerceError(CommerceCode.CLIENT_KEY_REUSED)
    return _ensure_prepay(order)


def _title(lines: Sequence[PricedLine]) -> str:
    head = lines[0].title
    return (f"{head} 等{len(lines)}项" if len(lines) > 1 else head)[:128]


def _schedule_expiry(order: Order) -> None:
    order_id, eta = order.pk, order.expires_at
    transaction.on_commit(lambda: _queue("expire", order_id, eta))


def _ensure_prepay(order: Order, *, payer_openid: str | None = None) -> Order:
    """Prepay at the provider once per order. The row lock makes concurrent
    identical checkouts wait for the first one's prepay instead of asking again."""
    if order.status != Order.Status.CREATED or order.payable_fen == 0 or order.pay_params:
        return order
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if locked.status != Order.Status.CREATED or locked.pay_params:
            return locked
        if locked.expires_at <= timezone.now():
            raise CommerceError(CommerceCode.ORDER_EXPIRED)
        result = provider_for(locked.provider).prepay(
            PrepayRequest(
                order_no=locked.order_no,
                amount_fen=locked.payable_fen,
                description=locked.title,
                channel=Channel(locked.channel),
                expires_at=locked.expires_at,
                notify_url=f"{settings.PAYMENTS_PUBLIC_BASE_URL.rstrip('/')}/api/v1/commerce/notify/{locked.provider}",
                payer_openid=payer_openid,
            )
        )
        locked.pay_params = dict(result.client_params)
        locked.provider_ref = result.provider_ref[:128]
        locked.save(update_fields=["pay_params", "provider_ref"])
        Payment.objects.get_or_create(
            order=locked,
            status=Payment.Status.PENDING,
            defaults={"provider": locked.provider, "amount_fen": locked.payable_fen},
        )
    return locked


def order_pay_params(*, user: User, order_no: str) -> Order:
    """The payer's unpaid order with its pay parameters (prepaid now if the
    checkout's prepay failed), for a "去支付" from the order list."""
    order = Order.objects.filter(order_no=order_no, payer=user).first()
    if order is None or user.role != Role.PATIENT:
        raise NotFound("订单")
    if order.status != Order.Status.CREATED:
        lifecycle.require(order, "pay", table=ORDER_TRANSITIONS, code=REFUSED)
    return _ensure_prepay(order)


def _record_free(order: Order, *, actor: User) -> None:
    """An order with nothing to pay (all waived or group-paid) is paid at once."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        _ledger(order, _sale_entries(order, ""))
        order.paid_at = timezone.now()
        _order_transition(
            order,
            "pay",
            actor=actor,
            fields=["paid_at"],
            audit=AuditEntry("commerce.paid", "commerce_order", order.order_no, {"amount_fen": 0}),
        )
        _claim_fulfilments(order)


# --- payment notices ------------------------------------------------------------------


@dataclass(frozen=True)
class NoticeOutcome:
    result: str  # "recorded" | "duplicate" | "late_refund" | "ignored"
    order_no: str


def refused_notice(reason: str, notice: PaymentNotice) -> CommerceError:
    log.warning(
        "payment notice refused (%s): provider=%s order=%s notice=%s",
        reason,
        notice.provider,
        notice.order_no,
        notice.notice_id,
    )
    return CommerceError(CommerceCode.NOTICE_REFUSED, reason=reason, order_no=notice.order_no)


def _check_merchant(notice: PaymentNotice, order: Order, *, refund: bool = False) -> None:
    if notice.provider != order.provider:
        raise refused_notice("provider_mismatch", notice)
    provider = provider_for(order.provider)
    # WeChat Pay's refund notifications carry the mchid but no appid: for a refund an
    # absent app id is accepted, a different one is not.
    app_ok = notice.app_id == provider.app_id or (refund and notice.app_id == "")
    if notice.merchant_id != provider.merchant_id or not app_ok:
        raise refused_notice("merchant_mismatch", notice)


def payment_notice_apply(notice: PaymentNotice) -> NoticeOutcome:
    """Apply a verified notice from the provider, exactly once.

    Refused (nothing recorded) when the order is unknown or the amount, merchant
    id, app id or provider differ from the order's. Concurrent and repeated
    notices of one transaction record one Payment, one ledger movement and one
    set of fulfilments: the order's row lock serialises them and the unique
    (provider, transaction id) backs it. A payment for an order already cancelled
    is recorded and refunded in full automatically."""
    if notice.status in (NoticeStatus.REFUNDED, NoticeStatus.REFUND_FAILED):
        return refund_notice_apply(notice)
    if notice.status != NoticeStatus.PAID:
        return NoticeOutcome("ignored", notice.order_no)
    try:
        with transaction.atomic():
            outcome, late_refund_id = _apply_paid(notice)
    except IntegrityError:
        if Payment.objects.filter(provider=notice.provider, transaction_id=notice.transaction_id).exists():
            return NoticeOutcome("duplicate", notice.order_no)
        raise
    if late_refund_id is not None:
        transaction.on_commit(lambda: refund_submit(late_refund_id))
    return outcome


def _apply_paid(notice: PaymentNotice) -> tuple[NoticeOutcome, int | None]:
    order = Order.objects.select_for_update().filter(order_no=notice.order_no).first()
    if order is None:
        raise refused_notice("unknown_order", notice)
    _check_merchant(notice, order)
    if notice.amount_fen != order.payable_fen:
        raise refused_notice("amount_mismatch", notice)
    if Payment.objects.filter(provider=notice.provider, transaction_id=notice.transaction_id).exists():
        return NoticeOutcome("duplicate", order.order_no), None
    if order.status not in (Order.Status.CREATED, Order.Status.CANCELLED):
        # Paid already under another transaction id: not ours to record here;
        # reconciliation lists it (missing locally) for a manual refund.
        raise refused_notice("already_paid", notice)
    late = order.status == Order.Status.CANCELLED
    payment = order.payments.filter(status__in=[Payment.Status.PENDING, Payment.Status.CLOSED]).first() or Payment(
        order=order, provider=notice.provider, amount_fen=notice.amount_fen
    )
    payment.transaction_id = notice.transaction_id
    payment.amount_fen = notice.amount_fen
    payment.status = Payment.Status.SUCCEEDED
    payment.notice_id = notice.notice_id[:128]
    payment.merchant_id = notice.merchant_id
    payment.app_id = notice.app_id
    payment.paid_at = notice.occurred_at
    payment.late = late
    payment.save()
    _ledger(order, _sale_entries(order, notice.transaction_id))
    order.paid_fen = notice.amount_fen
    order.paid_at = notice.occurred_at
    detail = {"amount_fen": notice.amount_fen, "provider": notice.provider, "transaction_id": notice.transaction_id}
    if not late:
        _order_transition(
            order,
            "pay",
            actor=None,
            fields=["paid_fen", "paid_at"],
            audit=AuditEntry("commerce.paid", "commerce_order", order.order_no, detail, actor_username="system"),
        )
        _claim_fulfilments(order)
        return NoticeOutcome("recorded", order.order_no), None
    order.status_before_refund = ""
    _order_transition(
        order,
        "late_payment",
        actor=None,
        fields=["paid_fen", "paid_at", "status_before_refund"],
        audit=AuditEntry("commerce.paid_late", "commerce_order", order.order_no, detail, actor_username="system"),
    )
    refund = _refund_create(
        order,
        amount_fen=order.paid_fen,
        lines=[(i, i.payable_fen) for i in order.items.filter(payable_fen__gt=0).order_by("pk")],
        reason="订单已取消后到账，系统自动退款",
        source=Refund.Source.LATE_PAYMENT,
        status=Refund.Status.PROCESSING,
        requested_by=None,
    )
    return NoticeOutcome("late_refund", order.order_no), refund.pk


# --- fulfilment -----------------------------------------------------------------------


def _claim_fulfilments(order: Order) -> None:
    Fulfilment.objects.bulk_create(
        [Fulfilment(item=i, event=Fulfilment.Event.PAID) for i in order.items.order_by("pk")], ignore_conflicts=True
    )
    _run_after_commit(order.pk)


def _run_after_commit(order_id: int) -> None:
    transaction.on_commit(lambda: _queue("fulfil", order_id, None))


def _event(item: OrderItem, f: Fulfilment) -> ItemEvent:
    order = item.order
    line = RefundLine.objects.filter(refund_id=f.refund_id, item=item).first() if f.refund_id else None
    return ItemEvent(
        order_no=order.order_no,
        item_id=item.pk,
        kind=item.kind,
        ref=item.ref,
        quantity=item.quantity,
        patient_id=order.patient_id,
        payer_id=order.payer_id,
        payable_fen=item.payable_fen,
        refund_fen=line.amount_fen if line else 0,
        refund_no=f.refund.refund_no if f.refund_id and f.refund else "",
    )


def fulfilments_run(order_id: int) -> dict[str, int]:
    """Run the owning apps' handlers for the order's pending fulfilments, each
    once: the row is claimed under a lock (skipping rows another worker holds)
    and marked done in the handler's transaction. A failing handler is retried
    by the next run (the sweep); it never blocks the others."""
    done = failed = 0
    ids = list(
        Fulfilment.objects.filter(
            item__order_id=order_id, status__in=[Fulfilment.Status.PENDING, Fulfilment.Status.FAILED]
        ).values_list("pk", flat=True)
    )
    for fid in ids:
        with transaction.atomic():
            f = (
                Fulfilment.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("item__order", "refund")
                .filter(pk=fid, status__in=[Fulfilment.Status.PENDING, Fulfilment.Status.FAILED])
                .first()
            )
            if f is None:
                continue
            kind = item_kind(f.item.kind)
            f.attempts += 1
            if kind is None:
                # Nobody in this process owns the kind (an app not loaded here): never
                # mark as delivered what nobody delivered; the sweep tries again.
                log.warning("no item kind %s registered for fulfilment %s", f.item.kind, f.pk)
                f.status = Fulfilment.Status.FAILED
                f.last_error = "kind_unregistered"
                f.save(update_fields=["status", "attempts", "last_error"])
                failed += 1
                continue
            # A kind without a handler for the event has nothing to do for it.
            handler = kind.on_paid if f.event == Fulfilment.Event.PAID else kind.on_refunded
            try:
                with transaction.atomic():
                    delivered = handler(_event(f.item, f)) if handler is not None else True
            except Exception as exc:  # the owning app's failure: kept for the retry, logged
                log.exception("commerce handler %s/%s failed for item %s", f.item.kind, f.event, f.item_id)
                f.status = Fulfilment.Status.FAILED
                f.last_error = type(exc).__name__[:200]
                f.save(update_fields=["status", "attempts", "last_error"])
                failed += 1
                continue
            f.status = Fulfilment.Status.DONE
            f.delivered = bool(delivered)
            f.done_at = timezone.now()
            f.save(update_fields=["status", "attempts", "delivered", "done_at"])
            done += 1
    _advance_fulfilment(order_id)
    return {"done": done, "failed": failed}


def fulfilments_retry(*, limit: int = 200) -> dict[str, int]:
    """The sweep behind the after-commit run: orders with a pending or failed fulfilment."""
    order_ids = list(
        Fulfilment.objects.filter(status__in=[Fulfilment.Status.PENDING, Fulfilment.Status.FAILED])
        .filter(attempts__lt=settings.COMMERCE_FULFIL_MAX_ATTEMPTS)
        .values_list("item__order_id", flat=True)
        .distinct()[:limit]
    )
    totals = {"done": 0, "failed": 0}
    for order_id in order_ids:
        for k, v in fulfilments_run(order_id).items():
            totals[k] += v
    return totals


def _advance_fulfilment(order_id: int) -> None:
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        if order.status not in (Order.Status.PAID, Order.Status.FULFILLING):
            return
        paid = Fulfilment.objects.filter(item__order=order, event=Fulfilment.Event.PAID)
        if paid.exclude(status=Fulfilment.Status.DONE).exists():
            return
        if not paid.filter(delivered=False).exists():
            order.completed_at = timezone.now()
            _order_transition(order, "complete", actor=None, fields=["completed_at"])
        elif order.status == Order.Status.PAID:
            _order_transition(order, "fulfil", actor=None)


def order_item_delivered(*, item_id: int) -> None:
    """The owning app says an item it took on (``on_paid`` returned False) is now delivered."""
    with transaction.atomic():
        f = Fulfilment.objects.select_for_update().filter(item_id=item_id, event=Fulfilment.Event.PAID).first()
        if f is None or f.status != Fulfilment.Status.DONE:
            raise NotFound("订单项目")
        if f.delivered:
            return
        f.delivered = True
        f.save(update_fields=["delivered"])
        order_id = f.item.order_id
    _advance_fulfilment(order_id)


# --- cancel and expiry ------------------------------------------------------------------


def _close_after_commit(order: Order) -> None:
    provider, order_no = order.provider, order.order_no

    def close() -> None:
        try:
            provider_for(provider).close(order_no)
        except Exception:  # the provider's close is best effort: a late payment is refunded anyway
            log.warning("closing order %s at %s failed", order_no, provider, exc_info=True)

    transaction.on_commit(close)


def order_cancel(*, user: User, order_no: str) -> Order:
    """The patient cancels their unpaid order; it is closed at the provider after commit."""
    order = Order.objects.filter(order_no=order_no, payer=user).first()
    if order is None or user.role != Role.PATIENT:
        raise NotFound("订单")
    with transaction.atomic():
        order.cancel_reason = Order.CancelReason.PATIENT
        order.cancelled_at = timezone.now()
        _order_transition(
            order,
            "cancel",
            actor=user,
            fields=["cancel_reason", "cancelled_at"],
            audit=AuditEntry("commerce.cancel", "commerce_order", order.order_no),
        )
        order.payments.filter(status=Payment.Status.PENDING).update(status=Payment.Status.CLOSED)
        if order.pay_params:
            _close_after_commit(order)
    return order


def order_expire(order_id: int, *, now: dt.datetime | None = None) -> bool:
    """Cancel one unpaid order whose time is up (safe to re-run: an order that is
    no longer unpaid, or not yet due, is left alone)."""
    now = now or timezone.now()
    with transaction.atomic():
        order = Order.objects.select_for_update().filter(pk=order_id).first()
        if order is None or order.status != Order.Status.CREATED or order.expires_at > now:
            return False
        order.cancel_reason = Order.CancelReason.EXPIRED
        order.cancelled_at = now
        _order_transition(
            order,
            "expire",
            actor=None,
            fields=["cancel_reason", "cancelled_at"],
            audit=AuditEntry("commerce.expire", "commerce_order", order.order_no, actor_username="system"),
        )
        order.payments.filter(status=Payment.Status.PENDING).update(status=Payment.Status.CLOSED)
        if order.pay_params:
            _close_after_commit(order)
    return True


def orders_expire_due(*, now: dt.datetime | None = None, limit: int = 500) -> dict[str, int]:
    """The sweep: every unpaid order past its deadline is cancelled. Rows are
    claimed one at a time under their lock, so the sweep and the per-order
    task never cancel (or close) twice."""
    now = now or timezone.now()
    ids = list(
        Order.objects.filter(status=Order.Status.CREATED, expires_at__lte=now)
        .order_by("expires_at")
        .values_list("pk", flat=True)[:limit]
    )
    return {"expired": sum(1 for pk in ids if order_expire(pk, now=now))}


# --- refunds --------------------------------------------------------------------------


def _refund_create(
    order: Order,
    *,
    amount_fen: int,
    lines: Sequence[tuple[OrderItem, int]],
    reason: str,
    source: str,
    status: str,
    requested_by: User | None,
) -> Refund:
    refund = Refund.objects.create(
        refund_no=_new_no("RF"),
        order=order,
        amount_fen=amount_fen,
        reason=reason[:200],
        source=source,
        status=status,
        requested_by=requested_by,
    )
    RefundLine.objects.bulk_create([RefundLine(refund=refund, item=i, amount_fen=a) for i, a in lines])
    audit_record(
        action="commerce.refund_request",
        actor=requested_by,
        actor_username="" if requested_by else "system",
        object_type="commerce_refund",
        object_id=refund.refund_no,
        detail={"order_no": order.order_no, "amount_fen": amount_fen, "source": source},
    )
    return refund


def refund_request(
    *, user: User, order_no: str, reason: str, items: Sequence[tuple[int, int | None]] | None = None
) -> Refund:
    """The payer asks for money back: the whole order (``items`` None) or some
    items, each for an amount (None: what is left of it). Staff decide."""
    reason = reason.strip()
    if not (2 <= len(reason) <= 200):
        raise Invalid("请填写退款原因（2-200字）", field="reason")
    order = Order.objects.filter(order_no=order_no, payer=user).first()
    if order is None or user.role != Role.PATIENT:
        raise NotFound("订单")
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        lifecycle.require(order, "refund_request", table=ORDER_TRANSITIONS, code=REFUSED)
        by_id = {i.pk: i for i in order.items.select_for_update().order_by("pk")}
        wanted: list[tuple[OrderItem, int]] = []
        if items is None:
            wanted = [(i, i.payable_fen - i.refunded_fen) for i in by_id.values() if i.payable_fen > i.refunded_fen]
        else:
            for item_id, amount in items:
                item = by_id.get(item_id)
                left = item.payable_fen - item.refunded_fen if item else 0
                if item is None or left <= 0:
                    raise CommerceError(CommerceCode.REFUND_ITEM_INVALID, item_id=item_id)
                amount = left if amount is None else amount
                if not (0 < amount <= left):
                    raise CommerceError(CommerceCode.REFUND_AMOUNT_INVALID, item_id=item_id, refundable=yuan(left))
                wanted.append((item, amount))
        total = sum(a for _, a in wanted)
        if total <= 0 or total > order.paid_fen - order.refunded_fen:
            raise CommerceError(
                CommerceCode.REFUND_AMOUNT_INVALID, refundable=yuan(order.paid_fen - order.refunded_fen)
            )
        order.status_before_refund = order.status
        _order_transition(order, "refund_request", actor=user, fields=["status_before_refund"], reason=reason)
        return _refund_create(
            order,
            amount_fen=total,
            lines=wanted,
            reason=reason,
            source=Refund.Source.PATIENT,
            status=Refund.Status.REQUESTED,
            requested_by=user,
        )


def order_refund_automatic(*, order_no: str, reason: str, item_ids: Sequence[int] | None = None) -> Refund | None:
    """A refund a domain rule decides, without staff approval (a visit the doctor
    ended and sent offline, R2): the whole order or the given items, whatever is
    left of them; sent to the provider after commit. None when nothing is left to
    refund or the order is not paid."""
    with transaction.atomic():
        order = Order.objects.select_for_update().filter(order_no=order_no).first()
        if order is None:
            raise NotFound("订单")
        if lifecycle.next_status(ORDER_TRANSITIONS, order.status, "refund_request") is None:
            return None
        items = order.items.select_for_update().order_by("pk")
        if item_ids is not None:
            items = items.filter(pk__in=list(item_ids))
        lines = [(i, i.payable_fen - i.refunded_fen) for i in items if i.payable_fen > i.refunded_fen]
        if not lines:
            return None
        order.status_before_refund = order.status
        _order_transition(order, "refund_request", actor=None, fields=["status_before_refund"], reason=reason[:500])
        refund = _refund_create(
            order,
            amount_fen=sum(a for _, a in lines),
            lines=lines,
            reason=reason,
            source=Refund.Source.AUTOMATIC,
            status=Refund.Status.PROCESSING,
            requested_by=None,
        )
        refund_id = refund.pk
        transaction.on_commit(lambda: refund_submit(refund_id))
    return refund


def _locked_refund(refund_no: str) -> Refund:
    refund = (
        Refund.objects.select_for_update(of=("self",))
        .select_related("order", "approved_by")
        .filter(refund_no=refund_no)
        .first()
    )
    if refund is None:
        raise NotFound("退款申请")
    return refund


def refund_approve(*, staff: User, refund_no: str) -> Refund:
    """Approve a requested refund. Up to COMMERCE_REFUND_APPROVAL_FEN one approval
    by a refund role sends it to the provider (after commit); above it, a first
    approval waits for a second one by a different person of a second-approval
    role other than the first approver's."""
    first_role = staff.role in settings.COMMERCE_REFUND_ROLES
    second_role = staff.role in settings.COMMERCE_REFUND_SECOND_ROLES
    if not (first_role or second_role):
        raise Forbidden()
    with transaction.atomic():
        refund = _locked_refund(refund_no)
        now = timezone.now()
        if refund.status == Refund.Status.REQUESTED and refund.amount_fen > settings.COMMERCE_REFUND_APPROVAL_FEN:
            if not first_role:
                raise Forbidden()
            refund.approved_by = staff
            refund.decided_at = now
            _refund_transition(refund, "approve_first", actor=staff, fields=["approved_by", "decided_at"])
            action = "commerce.refund_approve_first"
        elif refund.status == Refund.Status.APPROVED:
            first = refund.approved_by
            if not second_role or first is None or first.pk == staff.pk or first.role == staff.role:
                raise CommerceError(CommerceCode.REFUND_SECOND_APPROVER)
            refund.second_approved_by = staff
            refund.decided_at = now
            _refund_transition(refund, "approve", actor=staff, fields=["second_approved_by", "decided_at"])
            action = "commerce.refund_approve"
        else:
            if refund.status == Refund.Status.REQUESTED and not first_role:
                raise Forbidden()
            refund.approved_by = staff
            refund.decided_at = now
            _refund_transition(refund, "approve", actor=staff, fields=["approved_by", "decided_at"])
            action = "commerce.refund_approve"
        audit_record(
            action=action,
            actor=staff,
            object_type="commerce_refund",
            object_id=refund.refund_no,
            detail={"order_no": refund.order.order_no, "amount_fen": refund.amount_fen},
        )
        for pub in _publish(refund.order):
            events.publish(pub)
        if refund.status == Refund.Status.PROCESSING:
            refund_id = refund.pk
            transaction.on_commit(lambda: refund_submit(refund_id))
    return refund


def refund_reject(*, staff: User, refund_no: str, reason: str) -> Refund:
    if staff.role not in settings.COMMERCE_REFUND_ROLES + settings.COMMERCE_REFUND_SECOND_ROLES:
        raise Forbidden()
    reason = reason.strip()
    if not (2 <= len(reason) <= 200):
        raise Invalid("请填写驳回原因（2-200字）", field="reason")
    with transaction.atomic():
        refund = _locked_refund(refund_no)
        refund.rejected_by = staff
        refund.reject_reason = reason
        refund.decided_at = timezone.now()
        _refund_transition(refund, "reject", actor=staff, fields=["rejected_by", "reject_reason", "decided_at"])
        order = refund.order
        _order_transition(
            order,
            f"resume_{order.status_before_refund}",
            actor=staff,
            reason=reason,
            audit=AuditEntry(
                "commerce.refund_reject", "commerce_refund", refund.refund_no, {"order_no": order.order_no}
            ),
        )
    return refund


def refund_retry(*, staff: User, refund_no: str) -> Refund:
    """Send a refund the provider refused once more."""
    if staff.role not in settings.COMMERCE_REFUND_ROLES + settings.COMMERCE_REFUND_SECOND_ROLES:
        raise Forbidden()
    with transaction.atomic():
        refund = _locked_refund(refund_no)
        _refund_transition(refund, "retry", actor=staff)
        audit_record(
            action="commerce.refund_retry",
            actor=staff,
            object_type="commerce_refund",
            object_id=refund.refund_no,
            detail={"order_no": refund.order.order_no},
        )
        refund_id = refund.pk
        transaction.on_commit(lambda: refund_submit(refund_id))
    return refund


def refund_submit(refund_id: int) -> str:
    """Ask the provider to refund (outside any transaction). A synchronous
    success or failure settles the refund at once; "processing" waits for the
    refund notice. A provider error leaves it processing for the next try."""
    refund = Refund.objects.select_related("order").get(pk=refund_id)
    if refund.status != Refund.Status.PROCESSING:
        return refund.status
    order = refund.order
    try:
        result = provider_for(order.provider).refund(
            order_no=order.order_no,
            refund_no=refund.refund_no,
            amount_fen=refund.amount_fen,
            total_fen=order.paid_fen,
            reason=refund.reason,
        )
    except Exception:
        log.warning("refund %s at %s failed to submit", refund.refund_no, order.provider, exc_info=True)
        return refund.status
    if result.provider_refund_id:
        Refund.objects.filter(pk=refund.pk, provider_refund_id="").update(
            provider_refund_id=result.provider_refund_id[:64]
        )
    if result.status == "success":
        refund_settle(refund_no=refund.refund_no, success=True, occurred_at=timezone.now())
    elif result.status == "failed":
        refund_settle(refund_no=refund.refund_no, success=False, occurred_at=timezone.now())
    return Refund.objects.values_list("status", flat=True).get(pk=refund.pk)


def refund_notice_apply(notice: PaymentNotice) -> NoticeOutcome:
    """A refund notice settles its Refund (once) and the ledger."""
    refund = Refund.objects.select_related("order").filter(refund_no=notice.refund_no or "").first()
    if refund is None or refund.order.order_no != notice.order_no:
        raise refused_notice("unknown_refund", notice)
    _check_merchant(notice, refund.order, refund=True)
    if notice.refund_amount_fen != refund.amount_fen:
        raise refused_notice("amount_mismatch", notice)
    settled = refund_settle(
        refund_no=refund.refund_no, success=notice.status == NoticeStatus.REFUNDED, occurred_at=notice.occurred_at
    )
    return NoticeOutcome("recorded" if settled else "duplicate", refund.order.order_no)


def refund_settle(*, refund_no: str, success: bool, occurred_at: dt.datetime) -> bool:
    """Record the provider's answer for a processing refund; False if it was
    already settled (a repeated notice)."""
    with transaction.atomic():
        head = Refund.objects.filter(refund_no=refund_no).values_list("order_id", flat=True).first()
        if head is None:
            raise NotFound("退款申请")
        order = Order.objects.select_for_update().get(pk=head)
        refund = _locked_refund(refund_no)
        if refund.status != Refund.Status.PROCESSING:
            return False
        refund.settled_at = occurred_at
        detail = {"order_no": order.order_no, "amount_fen": refund.amount_fen}
        if not success:
            _refund_transition(refund, "fail", actor=None, fields=["settled_at"])
            audit_record(
                action="commerce.refund_failed",
                actor_username="system",
                object_type="commerce_refund",
                object_id=refund.refund_no,
                detail=detail,
            )
            for pub in _publish(order):
                events.publish(pub)
            return True
        _refund_transition(refund, "succeed", actor=None, fields=["settled_at"])
        _ledger(
            order,
            [
                (LedgerEntry.Kind.REFUND, refund.amount_fen, refund.refund_no),
                (LedgerEntry.Kind.REVERSAL, -refund.amount_fen, refund.refund_no),
            ],
        )
        for line in refund.lines.select_related("item"):
            OrderItem.objects.filter(pk=line.item_id).update(refunded_fen=F("refunded_fen") + line.amount_fen)
        order.refunded_fen += refund.amount_fen
        full = order.refunded_fen == order.paid_fen
        _order_transition(
            order,
            "refund_full" if full else "refund_partial",
            actor=None,
            fields=["refunded_fen"],
            audit=AuditEntry("commerce.refunded", "commerce_refund", refund.refund_no, detail, actor_username="system"),
        )
        Fulfilment.objects.bulk_create(
            [
                Fulfilment(item_id=line.item_id, event=Fulfilment.Event.REFUNDED, refund=refund)
                for line in refund.lines.all()
            ],
            ignore_conflicts=True,
        )
        _run_after_commit(order.pk)
    return True

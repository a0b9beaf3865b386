"""Reads of orders, refunds and the ledger, and the response shapes (money as fen plus yuan)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet, Sum

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.core.lifecycle import allowed_actions
from hub.errors import NotFound

from .models import LedgerEntry, Order, OrderItem, Payment, Receipt, ReconciliationReport, Refund
from .money import yuan
from .states import ORDER_TRANSITIONS, REFUND_TRANSITIONS

PATIENT_ORDER_ACTIONS = ("pay", "cancel", "refund_request")  # "pay": the payer opens the pay sheet
STAFF_REFUND_ACTIONS = ("approve", "reject", "retry")


def ledger_balance(order: Order) -> dict[str, int]:
    """The order's ledger summed: ``balance`` (all entries; always 0), ``received``
    (money in minus money returned; always ``paid_fen - refunded_fen``) and the
    sum per kind."""
    per_kind = dict(
        LedgerEntry.objects.filter(order=order).values_list("kind").annotate(total=Sum("amount_fen")).order_by()
    )
    out = {k: int(per_kind.get(k, 0)) for k in LedgerEntry.Kind.values}
    out["balance"] = sum(out[k] for k in LedgerEntry.Kind.values)
    out["received"] = -(out["payment"] + out["refund"])
    return out


def may_staff(user: User) -> bool:
    return user.role in settings.COMMERCE_STAFF_ROLES


def orders_of_payer(user: User) -> QuerySet[Order]:
    return Order.objects.filter(payer=user).select_related("patient").order_by("-created_at", "-pk")


def order_for(user: User, order_no: str) -> Order:
    """The order as ``user`` may see it: the payer's own, or any for commerce staff;
    the same 404 otherwise."""
    qs = Order.objects.select_related("patient", "payer").filter(order_no=order_no)
    if user.role == Role.PATIENT:
        qs = qs.filter(payer=user)
    elif not may_staff(user):
        qs = qs.none()
    order = qs.first()
    if order is None:
        raise NotFound("订单")
    return order


def orders_search(
    *,
    q: str = "",
    status: str = "",
    patient_id: int | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> QuerySet[Order]:
    qs = Order.objects.select_related("patient").order_by("-created_at", "-pk")
    if q:
        qs = qs.filter(Q(order_no=q.strip()) | Q(patient__name=q.strip()))
    if status:
        qs = qs.filter(status=status)
    if patient_id is not None:
        qs = qs.filter(patient_id=patient_id)
    if date_from is not None:
        qs = qs.filter(created_at__date__gte=date_from)
    if date_to is not None:
        qs = qs.filter(created_at__date__lte=date_to)
    return qs


def refunds_awaiting(user: User) -> QuerySet[Refund]:
    """Refunds this staff member may decide now: requested ones for the refund
    roles, and those with a first approval (by someone else, of another role)
    for the second-approval roles."""
    first = user.role in settings.COMMERCE_REFUND_ROLES
    second = user.role in settings.COMMERCE_REFUND_SECOND_ROLES
    cond = Q(pk__in=[])
    if first:
        cond |= Q(status=Refund.Status.REQUESTED)
    if second:
        cond |= Q(status=Refund.Status.APPROVED) & ~Q(approved_by=user) & ~Q(approved_by__role=user.role)
    if not (first or second):
        return Refund.objects.none()
    return Refund.objects.filter(cond).select_related("order", "order__patient").order_by("created_at")


def money(fen: int) -> dict[str, Any]:
    return {"fen": fen, "yuan": yuan(fen)}


def item_out(item: OrderItem) -> dict[str, Any]:
    return {
        "id": item.pk,
        "kind": item.kind,
        "ref": item.ref,
        "title": item.title,
        "quantity": item.quantity,
        "unit_price": money(item.unit_price_fen),
        "discount": money(item.discount_fen),
        "waived": item.waived,
        "waived_amount": money(item.waived_fen),
        "payer": item.payer,
        "payer_label": OrderItem.Payer(item.payer).label,
        "group_amount": money(item.group_fen),
        "payable": money(item.payable_fen),
        "refunded": money(item.refunded_fen),
    }


def order_brief(order: Order, user: User) -> dict[str, Any]:
    among = PATIENT_ORDER_ACTIONS if user.role == Role.PATIENT else ()
    return {
        "order_no": order.order_no,
        "title": order.title,
        "status": order.status,
        "status_label": Order.Status(order.status).label,
        "patient_id": order.patient_id,
        "patient_name": order.patient.name,
        "total": money(order.total_fen),
        "payable": money(order.payable_fen),
        "paid": money(order.paid_fen),
        "refunded": money(order.refunded_fen),
        "channel": order.channel,
        "created_at": order.created_at,
        "expires_at": order.expires_at,
        "paid_at": order.paid_at,
        "allowed_actions": allowed_actions(ORDER_TRANSITIONS, order.status, among=among),
    }


def refund_out(refund: Refund, user: User) -> dict[str, Any]:
    among = (
        STAFF_REFUND_ACTIONS
        if user.role in settings.COMMERCE_REFUND_ROLES + settings.COMMERCE_REFUND_SECOND_ROLES
        else ()
    )
    actions = allowed_actions(REFUND_TRANSITIONS, refund.status, among=among)
    if refund.status == Refund.Status.APPROVED and (
        user.role not in settings.COMMERCE_REFUND_SECOND_ROLES
        or user.pk == refund.approved_by_id
        or (refund.approved_by is not None and refund.approved_by.role == user.role)
    ):
        actions = [a for a in actions if a != "approve"]
    return {
        "refund_no": refund.refund_no,
        "order_no": refund.order.order_no,
        "amount": money(refund.amount_fen),
        "reason": refund.reason,
        "source": refund.source,
        "source_label": Refund.Source(refund.source).label,
        "status": refund.status,
        "status_label": Refund.Status(refund.status).label,
        "needs_second_approval": refund.amount_fen > settings.COMMERCE_REFUND_APPROVAL_FEN,
        "reject_reason": refund.reject_reason,
        "created_at": refund.created_at,
        "settled_at": refund.settled_at,
        "items": [{"item_id": line.item_id, "amount": money(line.amount_fen)} for line in refund.lines.all()],
        "allowed_actions": actions,
    }


def payment_out(p: Payment) -> dict[str, Any]:
    return {
        "provider": p.provider,
        "status": p.status,
        "status_label": Payment.Status(p.status).label,
        "amount": money(p.amount_fen),
        "transaction_id": p.transaction_id or "",
        "late": p.late,
        "paid_at": p.paid_at,
    }


def receipt_out(r: Receipt) -> dict[str, Any]:
    return {
        "request_no": r.request_no,
        "status": r.status,
        "status_label": Receipt.Status(r.status).label,
        "amount": money(r.amount_fen),
        "code": r.code,
        "number": r.number,
        "check_code": r.check_code,
        "view_url": r.view_url,
        "issued_at": r.issued_at,
        "voided_at": r.voided_at,
    }


def order_detail(order: Order, user: User) -> dict[str, Any]:
    balance = ledger_balance(order)
    refunds = order.refunds.select_related("order", "approved_by").prefetch_related("lines").order_by("created_at")
    return {
        **order_brief(order, user),
        "discount": money(order.discount_fen),
        "waived": money(order.waived_fen),
        "group_amount": money(order.group_fen),
        "cancel_reason": order.cancel_reason,
        "items": [item_out(i) for i in order.items.order_by("pk")],
        "payments": [payment_out(p) for p in order.payments.exclude(status=Payment.Status.PENDING).order_by("pk")],
        "refunds": [refund_out(r, user) for r in refunds],
        "receipts": [
            receipt_out(r) for r in order.receipts.exclude(status=Receipt.Status.CANCELLED).order_by("created_at", "pk")
        ],
        "ledger": {k: money(v) for k, v in balance.items() if v or k in ("balance", "received")},
        "pay_params": order.pay_params if order.status == Order.Status.CREATED and user.pk == order.payer_id else {},
    }


def report_out(r: ReconciliationReport, *, lines: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": r.pk,
        "provider": r.provider,
        "day": r.day,
        "bill_lines": r.bill_lines,
        "ledger_lines": r.ledger_lines,
        "differences": r.differences,
        "created_at": r.created_at,
    }
    if lines:
        out["lines"] = [
            {
                "problem": x.problem,
                "problem_label": x.get_problem_display(),
                "kind": x.kind,
                "order_no": x.order_no,
                "reference": x.reference,
                "local": money(x.local_fen) if x.local_fen is not None else None,
                "provider_amount": money(x.provider_fen) if x.provider_fen is not None else None,
            }
            for x in r.lines.order_by("pk")
        ]
    return out

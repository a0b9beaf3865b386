"""Visits as something commerce sells (``apps.commerce.registry``): the kind
``consultation``, ref = the visit's public id, quantity 1.

- price: the doctor's price for the visit's kind (a department-queue visit: the
  department price settings), fixed on the visit at booking;
- checkout: only a visit of that 就诊人 waiting for payment, checked out once (the
  booking does it; the patient app pays the booked order);
- paid: the visit enters its queue (``visit_mark_paid``); delivered when it ends;
- refunded: a visit still waiting is cancelled (a refund decided in commerce)."""

from __future__ import annotations

from typing import Any

from apps.commerce.registry import ItemEvent, Quote, register_item_kind
from hub.errors import NotFound

from .models import Visit, VisitKind
from .services import ITEM_KIND, visit_mark_paid, visit_mark_refunded

KIND = ITEM_KIND


def _visit(patient: Any, ref: str) -> Visit | None:
    return (
        Visit.objects.select_related("doctor__user", "department").filter(public_id=ref[:16], patient=patient).first()
    )


def _quote(patient: Any, ref: str, quantity: int) -> Quote:
    visit = _visit(patient, ref)
    if visit is None or quantity != 1:
        raise NotFound("问诊")
    who = visit.doctor.user.display_name if visit.doctor else f"{visit.department.name}（科室排队）"
    return Quote(title=f"{VisitKind(visit.kind).label} · {who}", unit_price_fen=visit.price_fen)


def _can_checkout(patient: Any, ref: str, quantity: int) -> str | None:
    visit = _visit(patient, ref)
    if visit is None:
        return "问诊不存在"
    if quantity != 1:
        return "问诊只能整次支付"
    if visit.status != Visit.Status.PENDING_PAYMENT:
        return "该问诊不在待支付状态"
    if visit.order_no:
        return "该问诊已下单，请在订单中支付"
    return None


def _on_paid(item: ItemEvent) -> bool:
    visit_mark_paid(public_id=item.ref, order_no=item.order_no)
    return False  # delivered when the visit ends (services.visit_end)


def _on_refunded(item: ItemEvent) -> bool:
    visit_mark_refunded(public_id=item.ref)
    return True


def register() -> None:
    register_item_kind(
        KIND, title="在线问诊", quote=_quote, can_checkout=_can_checkout, on_paid=_on_paid, on_refunded=_on_refunded
    )

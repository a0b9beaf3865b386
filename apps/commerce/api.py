"""/api/v1/commerce/: checkout, orders, refunds, reconciliation, and the
providers' notify endpoints.

A patient reaches only the orders they pay for (any other order number answers
the same 404); staff roles come from the COMMERCE_* settings. The notify
endpoints take no token: the provider verifies the notice's signature
(``parse_notify``) and commerce compares it with the order before recording."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Query, Router, Status

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.audit.services import audit_record
from hub.auth import require_roles
from hub.errors import ApiError, HubCode, Invalid, NotFound, errors
from hub.pagination import PageParams, page

from . import reconcile, selectors, services
from .errors import CommerceCode
from .models import Order, ReconciliationReport, Refund
from .payments.base import NotifyRejected
from .payments.errors import PaymentsCode
from .schemas import (
    CheckoutIn,
    NoticeAckOut,
    OrderListOut,
    OrderOut,
    ReconcileIn,
    RefundIn,
    RefundListOut,
    RefundOut,
    RejectIn,
    ReportDetailOut,
    ReportListOut,
)

router = Router()


def _user(request: HttpRequest) -> User:
    return request.auth  # type: ignore[attr-defined]


def _order_out(order: Order, user: User) -> dict[str, Any]:
    order.refresh_from_db()
    return selectors.order_detail(order, user)


# --- patient ---------------------------------------------------------------------------


@router.post(
    "/orders",
    response={
        201: OrderOut,
        **errors(
            HubCode.FORBIDDEN,
            HubCode.NOT_FOUND,
            HubCode.VALIDATION_ERROR,
            CommerceCode.ITEMS_REQUIRED,
            CommerceCode.ITEM_KIND_UNKNOWN,
            CommerceCode.ITEM_REFUSED,
            CommerceCode.CLIENT_KEY_REUSED,
            CommerceCode.CHANNEL_UNAVAILABLE,
            CommerceCode.ORDER_EXPIRED,
            PaymentsCode.UNKNOWN_PROVIDER,
            PaymentsCode.SANDBOX_IN_PRODUCTION,
            PaymentsCode.BAD_REQUEST,
            PaymentsCode.GATEWAY_ERROR,
            PaymentsCode.GATEWAY_BAD_RESPONSE,
            PaymentsCode.GATEWAY_UNAVAILABLE,
        ),
    },
    summary="下单并获取支付参数（同一 client_key 重试得到同一订单）",
)
def checkout(request: HttpRequest, body: CheckoutIn) -> Status[dict[str, Any]]:
    user = require_roles(request, [Role.PATIENT])
    order = services.order_checkout(
        payer=user,
        patient_id=body.patient_id,
        lines=[services.CheckoutLine(kind=x.kind, ref=x.ref, quantity=x.quantity) for x in body.items],
        client_key=body.client_key,
        channel=body.channel,
        payer_openid=body.payer_openid,
    )
    return Status(201, _order_out(order, user))


@router.get(
    "/orders", response={200: OrderListOut, **errors(HubCode.FORBIDDEN, HubCode.VALIDATION_ERROR)}, summary="我的订单"
)
def my_orders(request: HttpRequest, params: Query[PageParams], status: str = "") -> dict[str, Any]:
    user = require_roles(request, [Role.PATIENT])
    qs = selectors.orders_of_payer(user)
    if status:
        qs = qs.filter(status=status)
    return page(qs, params, lambda rows: [selectors.order_brief(o, user) for o in rows])


@router.get("/orders/{order_no}", response={200: OrderOut, **errors(HubCode.NOT_FOUND)}, summary="订单详情")
def order_detail(request: HttpRequest, order_no: str) -> dict[str, Any]:
    user = _user(request)
    try:
        order = selectors.order_for(user, order_no)
    except NotFound:
        if user.role != Role.PATIENT:
            audit_record(
                action="commerce.order_view",
                actor=user,
                object_type="commerce_order",
                object_id=order_no[:32],
                result="denied",
            )
        raise
    if user.role != Role.PATIENT:
        audit_record(action="commerce.order_view", actor=user, object_type="commerce_order", object_id=order.order_no)
    return selectors.order_detail(order, user)


@router.post(
    "/orders/{order_no}/pay",
    response={
        200: OrderOut,
        **errors(
            HubCode.NOT_FOUND,
            CommerceCode.TRANSITION_REFUSED,
            CommerceCode.ORDER_EXPIRED,
            PaymentsCode.UNKNOWN_PROVIDER,
            PaymentsCode.BAD_REQUEST,
            PaymentsCode.GATEWAY_ERROR,
            PaymentsCode.GATEWAY_BAD_RESPONSE,
            PaymentsCode.GATEWAY_UNAVAILABLE,
        ),
    },
    summary="获取待支付订单的支付参数（去支付）",
)
def order_pay(request: HttpRequest, order_no: str) -> dict[str, Any]:
    user = _user(request)
    order = services.order_pay_params(user=user, order_no=order_no)
    return _order_out(order, user)


@router.post(
    "/orders/{order_no}/cancel",
    response={200: OrderOut, **errors(HubCode.NOT_FOUND, CommerceCode.TRANSITION_REFUSED)},
    summary="取消待支付订单",
)
def order_cancel(request: HttpRequest, order_no: str) -> dict[str, Any]:
    user = _user(request)
    order = services.order_cancel(user=user, order_no=order_no)
    return _order_out(order, user)


@router.post(
    "/orders/{order_no}/refunds",
    response={
        201: RefundOut,
        **errors(
            HubCode.NOT_FOUND,
            HubCode.VALIDATION_ERROR,
            CommerceCode.TRANSITION_REFUSED,
            CommerceCode.REFUND_AMOUNT_INVALID,
            CommerceCode.REFUND_ITEM_INVALID,
        ),
    },
    summary="申请退款（整单或部分项目）",
)
def refund_request(request: HttpRequest, order_no: str, body: RefundIn) -> Status[dict[str, Any]]:
    user = _user(request)
    refund = services.refund_request(
        user=user,
        order_no=order_no,
        reason=body.reason,
        items=None if body.items is None else [(x.item_id, x.amount_fen) for x in body.items],
    )
    return Status(201, selectors.refund_out(refund, user))


# --- staff -----------------------------------------------------------------------------


@router.get(
    "/staff/orders",
    response={200: OrderListOut, **errors(HubCode.FORBIDDEN, HubCode.VALIDATION_ERROR)},
    summary="订单查询（按订单号/就诊人姓名、状态、就诊人、日期）",
)
def orders_search(
    request: HttpRequest,
    params: Query[PageParams],
    q: str = "",
    status: str = "",
    patient_id: int | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> dict[str, Any]:
    user = require_roles(request, settings.COMMERCE_STAFF_ROLES)
    qs = selectors.orders_search(q=q, status=status, patient_id=patient_id, date_from=date_from, date_to=date_to)
    audit_record(action="commerce.order_search", actor=user, object_type="commerce_order", detail={"status": status})
    return page(qs, params, lambda rows: [selectors.order_brief(o, user) for o in rows])


@router.get(
    "/staff/refunds",
    response={200: RefundListOut, **errors(HubCode.FORBIDDEN, HubCode.VALIDATION_ERROR)},
    summary="退款申请（awaiting：待我审核；或按状态）",
)
def refunds_list(request: HttpRequest, params: Query[PageParams], status: str = "awaiting") -> dict[str, Any]:
    user = require_roles(request, set(settings.COMMERCE_REFUND_ROLES) | set(settings.COMMERCE_REFUND_SECOND_ROLES))
    if status == "awaiting":
        qs = selectors.refunds_awaiting(user)
    else:
        qs = Refund.objects.select_related("order").order_by("-created_at")
        if status:
            qs = qs.filter(status=status)
    qs = qs.select_related("approved_by").prefetch_related("lines")
    return page(qs, params, lambda rows: [selectors.refund_out(r, user) for r in rows])


def _refund_view(user: User, refund_no: str) -> dict[str, Any]:
    refund = Refund.objects.select_related("order", "approved_by").prefetch_related("lines").get(refund_no=refund_no)
    return selectors.refund_out(refund, user)


@router.post(
    "/refunds/{refund_no}/approve",
    response={
        200: RefundOut,
        **errors(
            HubCode.FORBIDDEN, HubCode.NOT_FOUND, CommerceCode.TRANSITION_REFUSED, CommerceCode.REFUND_SECOND_APPROVER
        ),
    },
    summary="审核通过退款（超过限额需另一角色复核）",
)
def refund_approve(request: HttpRequest, refund_no: str) -> dict[str, Any]:
    user = _user(request)
    services.refund_approve(staff=user, refund_no=refund_no)
    return _refund_view(user, refund_no)


@router.post(
    "/refunds/{refund_no}/reject",
    response={
        200: RefundOut,
        **errors(HubCode.FORBIDDEN, HubCode.NOT_FOUND, HubCode.VALIDATION_ERROR, CommerceCode.TRANSITION_REFUSED),
    },
    summary="驳回退款申请",
)
def refund_reject(request: HttpRequest, refund_no: str, body: RejectIn) -> dict[str, Any]:
    user = _user(request)
    services.refund_reject(staff=user, refund_no=refund_no, reason=body.reason)
    return _refund_view(user, refund_no)


@router.post(
    "/refunds/{refund_no}/retry",
    response={200: RefundOut, **errors(HubCode.FORBIDDEN, HubCode.NOT_FOUND, CommerceCode.TRANSITION_REFUSED)},
    summary="重新发起失败的退款",
)
def refund_retry(request: HttpRequest, refund_no: str) -> dict[str, Any]:
    user = _user(request)
    services.refund_retry(staff=user, refund_no=refund_no)
    return _refund_view(user, refund_no)


@router.get(
    "/reconciliation",
    response={200: ReportListOut, **errors(HubCode.FORBIDDEN, HubCode.VALIDATION_ERROR)},
    summary="对账报告",
)
def reports(request: HttpRequest, params: Query[PageParams], provider: str = "") -> dict[str, Any]:
    require_roles(request, settings.COMMERCE_RECONCILE_ROLES)
    qs = ReconciliationReport.objects.order_by("-day", "-pk")
    if provider:
        qs = qs.filter(provider=provider)
    return page(qs, params, lambda rows: [selectors.report_out(r) for r in rows])


@router.post(
    "/reconciliation",
    response={
        201: ReportDetailOut,
        **errors(
            HubCode.FORBIDDEN,
            HubCode.VALIDATION_ERROR,
            PaymentsCode.UNKNOWN_PROVIDER,
            PaymentsCode.GATEWAY_ERROR,
            PaymentsCode.GATEWAY_BAD_RESPONSE,
            PaymentsCode.GATEWAY_UNAVAILABLE,
        ),
    },
    summary="立即对账（下载渠道某日账单并与本地记录核对）",
)
def reconcile_now(request: HttpRequest, body: ReconcileIn) -> Status[dict[str, Any]]:
    user = require_roles(request, settings.COMMERCE_RECONCILE_ROLES)
    if body.day >= timezone.now().astimezone(reconcile.SH).date():
        raise Invalid("只能核对今天以前的账单", field="day")
    report = reconcile.bill_reconcile(provider=body.provider, day=body.day, actor=user)
    return Status(201, selectors.report_out(report, lines=True))


@router.get(
    "/reconciliation/{report_id}",
    response={200: ReportDetailOut, **errors(HubCode.FORBIDDEN, HubCode.NOT_FOUND)},
    summary="对账报告详情（每一处差异）",
)
def report_detail(request: HttpRequest, report_id: int) -> dict[str, Any]:
    user = require_roles(request, settings.COMMERCE_RECONCILE_ROLES)
    report = ReconciliationReport.objects.filter(pk=report_id).first()
    if report is None:
        raise NotFound("对账报告")
    audit_record(
        action="commerce.reconcile_view", actor=user, object_type="commerce_reconciliation", object_id=report.pk
    )
    return selectors.report_out(report, lines=True)


# --- provider notifications ------------------------------------------------------------------


def _notify(request: HttpRequest, provider_name: str, *, refund: bool) -> HttpResponse:
    provider = services.provider_for(provider_name)  # unknown provider: 503 through the error handler
    try:
        notice = provider.parse_notify(request.headers, request.body)
        if notice.provider != provider_name:
            raise services.refused_notice("provider_mismatch", notice)
        if refund != (notice.refund_no is not None):
            raise services.refused_notice("wrong_endpoint", notice)
        services.payment_notice_apply(notice)
        ok = True
    except ApiError as exc:  # NotifyRejected (bad signature, serial, timestamp, nonce) or a mismatch with the order
        if exc.status >= 500 and not isinstance(exc, NotifyRejected):
            raise
        # Nothing was recorded; the refusal itself is audited (codes only).
        audit_record(
            action="commerce.notice_refused",
            actor_username=f"gateway:{provider_name}"[:150],
            object_type="commerce_notice",
            result="denied",
            detail={"provider": provider_name, "code": exc.code, "reason": exc.detail.get("reason", "")},
        )
        ok = False
    status, content_type, body = provider.notify_ack(ok)
    return HttpResponse(body, status=status, content_type=content_type)


@router.post(
    "/notify/{provider}",
    auth=None,
    response={200: NoticeAckOut, **errors(PaymentsCode.UNKNOWN_PROVIDER, auth=False)},
    summary="支付平台异步通知（验签后按订单核对金额、商户号、应用号）",
)
def notify(request: HttpRequest, provider: str) -> HttpResponse:
    return _notify(request, provider, refund=False)


@router.post(
    "/notify/{provider}/refund",
    auth=None,
    response={200: NoticeAckOut, **errors(PaymentsCode.UNKNOWN_PROVIDER, auth=False)},
    summary="支付平台退款结果通知",
)
def notify_refund(request: HttpRequest, provider: str) -> HttpResponse:
    return _notify(request, provider, refund=True)

"""ninja schemas of /api/v1/commerce/: money as fen plus a yuan string."""

from __future__ import annotations

import datetime as dt

from ninja import Schema
from pydantic import Field


class MoneyOut(Schema):
    fen: int
    yuan: str = Field(description="展示用金额，如 ¥12.50")


class CheckoutItemIn(Schema):
    kind: str = Field(min_length=1, max_length=32)
    ref: str = Field(min_length=1, max_length=64)
    quantity: int = Field(1, ge=1, le=999)


class CheckoutIn(Schema):
    patient_id: int = Field(ge=1, le=2**63 - 1)
    items: list[CheckoutItemIn] = Field(min_length=1, max_length=20)
    client_key: str = Field(min_length=8, max_length=64, description="客户端生成的幂等键：重试同一下单请求时不变")
    channel: str = Field("sandbox", max_length=16)
    payer_openid: str | None = Field(None, max_length=128)


class ItemOut(Schema):
    id: int
    kind: str
    ref: str
    title: str
    quantity: int
    unit_price: MoneyOut
    discount: MoneyOut
    waived: bool
    waived_amount: MoneyOut
    payer: str
    payer_label: str
    group_amount: MoneyOut
    payable: MoneyOut
    refunded: MoneyOut


class PaymentOut(Schema):
    provider: str
    status: str
    status_label: str
    amount: MoneyOut
    transaction_id: str
    late: bool
    paid_at: dt.datetime | None


class RefundLineOut(Schema):
    item_id: int
    amount: MoneyOut


class RefundOut(Schema):
    refund_no: str
    order_no: str
    amount: MoneyOut
    reason: str
    source: str
    source_label: str
    status: str
    status_label: str
    needs_second_approval: bool
    reject_reason: str
    created_at: dt.datetime
    settled_at: dt.datetime | None
    items: list[RefundLineOut]
    allowed_actions: list[str]


class OrderBriefOut(Schema):
    order_no: str
    title: str
    status: str
    status_label: str
    patient_id: int
    patient_name: str
    total: MoneyOut
    payable: MoneyOut
    paid: MoneyOut
    refunded: MoneyOut
    channel: str
    created_at: dt.datetime
    expires_at: dt.datetime
    paid_at: dt.datetime | None
    allowed_actions: list[str]


class OrderOut(OrderBriefOut):
    discount: MoneyOut
    waived: MoneyOut
    group_amount: MoneyOut
    cancel_reason: str
    items: list[ItemOut]
    payments: list[PaymentOut]
    refunds: list[RefundOut]
    ledger: dict[str, MoneyOut] = Field(description="账目汇总：各类分录合计，balance 恒为 0，received 为实收净额")
    pay_params: dict[str, str] = Field(description="待支付时交给支付控件的参数（仅下单人可见）")


class OrderListOut(Schema):
    items: list[OrderBriefOut]
    count: int


class RefundItemIn(Schema):
    item_id: int = Field(ge=1, le=2**63 - 1)
    amount_fen: int | None = Field(None, ge=1, le=10**12)


class RefundIn(Schema):
    reason: str = Field(min_length=2, max_length=200)
    items: list[RefundItemIn] | None = Field(None, max_length=20, description="不填为整单退款")


class RefundListOut(Schema):
    items: list[RefundOut]
    count: int


class RejectIn(Schema):
    reason: str = Field(min_length=2, max_length=200)


class ReconLineOut(Schema):
    problem: str
    problem_label: str
    kind: str
    order_no: str
    reference: str
    local: MoneyOut | None
    provider_amount: MoneyOut | None


class ReconcileIn(Schema):
    provider: str = Field(min_length=1, max_length=32)
    day: dt.date = Field(description="对账日（北京时间）")


class ReportOut(Schema):
    id: int
    provider: str
    day: dt.date
    bill_lines: int
    ledger_lines: int
    differences: int
    created_at: dt.datetime


class ReportDetailOut(ReportOut):
    lines: list[ReconLineOut]


class ReportListOut(Schema):
    items: list[ReportOut]
    count: int


class NoticeAckOut(Schema):
    """The provider's own answer to its notification (WeChat Pay: this JSON; Alipay: the text ``success``)."""

    code: str = Field(description="SUCCESS 或 FAIL")
    message: str | None = None

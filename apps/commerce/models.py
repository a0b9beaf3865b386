"""Orders, their items, payments, refunds and the per-order ledger.

Money is integer fen everywhere. The ledger is append-only (a PostgreSQL
trigger refuses UPDATE and DELETE) and double-entry per order: every money
movement appends entries that sum to zero, and a deferred constraint trigger
checks at commit that each order's entries sum to zero and that the money
entries equal what the order says was received (``paid_fen - refunded_fen``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.accounts.models import Patient


class Order(models.Model):
    class Status(models.TextChoices):
        CREATED = "created", "待支付"  # priced and prepaid at the provider, waiting for the payment notice
        PAID = "paid", "已支付"  # payment confirmed; fulfilment handlers queued
        FULFILLING = "fulfilling", "履约中"  # some item's owning app is still delivering it
        COMPLETED = "completed", "已完成"  # every item delivered
        CANCELLED = "cancelled", "已取消"  # by the patient or by the unpaid timeout; nothing charged
        REFUND_REQUESTED = "refund_requested", "退款中"  # one refund open (requested, approved or processing)
        PARTIALLY_REFUNDED = "partially_refunded", "部分退款"  # some money returned, the rest kept
        REFUNDED = "refunded", "已退款"  # everything paid returned

    class CancelReason(models.TextChoices):
        PATIENT = "patient", "患者取消"
        EXPIRED = "expired", "超时未支付"

    order_no = models.CharField(max_length=32, unique=True)  # our out_trade_no at the provider
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="orders")
    payer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.CREATED)
    title = models.CharField(max_length=128)
    # total = gross; payable = total - discount - waived - group (what the payer is charged).
    total_fen = models.BigIntegerField()
    discount_fen = models.BigIntegerField(default=0)  # item discounts and package prices
    waived_fen = models.BigIntegerField(default=0)  # fee waivers (pricing rules)
    group_fen = models.BigIntegerField(default=0)  # group-paid items: recorded, not charged to the patient
    payable_fen = models.BigIntegerField()
    paid_fen = models.BigIntegerField(default=0)
    refunded_fen = models.BigIntegerField(default=0)
    channel = models.CharField(max_length=16)
    provider = models.CharField(max_length=32)
    client_key = models.CharField(max_length=64)  # the client's idempotency key for checkout
    request_hash = models.CharField(max_length=64)  # what was asked with that key (a reused key must match)
    pay_params = models.JSONField(default=dict)  # the provider's client parameters (answered again on retry)
    provider_ref = models.CharField(max_length=128, blank=True)
    expires_at = models.DateTimeField()
    cancel_reason = models.CharField(max_length=16, choices=CancelReason.choices, blank=True)
    # The status a rejected refund returns the order to.
    status_before_refund = models.CharField(max_length=20, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    paid_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["payer", "client_key"], name="commerce_order_client_key"),
            models.CheckConstraint(
                condition=Q(total_fen__gte=0)
                & Q(discount_fen__gte=0)
                & Q(waived_fen__gte=0)
                & Q(group_fen__gte=0)
                & Q(payable_fen__gte=0)
                & Q(
                    payable_fen=models.F("total_fen")
                    - models.F("discount_fen")
                    - models.F("waived_fen")
                    - models.F("group_fen")
                ),
                name="commerce_order_price_identity",
            ),
            models.CheckConstraint(
                condition=Q(refunded_fen__gte=0) & Q(refunded_fen__lte=models.F("paid_fen")),
                name="commerce_order_refund_le_paid",
            ),
        ]
        indexes = [
            models.Index(fields=["payer", "-created_at"]),
            models.Index(fields=["status", "expires_at"]),
            models.Index(fields=["patient", "-created_at"]),
        ]

    def __str__(self) -> str:
        return self.order_no


class OrderItem(models.Model):
    class Payer(models.TextChoices):
        SELF = "self", "自费"
        GROUP = "group", "团体支付"

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="items")
    kind = models.CharField(max_length=32)  # registered item kind, e.g. "consultation", "tea_bag"
    ref = models.CharField(max_length=64)  # the owning app's id of what is sold
    title = models.CharField(max_length=128)
    quantity = models.PositiveIntegerField()
    unit_price_fen = models.BigIntegerField()
    discount_fen = models.BigIntegerField(default=0)  # item discount plus its share of a package price
    payer = models.CharField(max_length=8, choices=Payer.choices, default=Payer.SELF)
    waived = models.BooleanField(default=False)
    waived_by = models.CharField(max_length=64, blank=True)  # the waiver rule's code
    waived_fen = models.BigIntegerField(default=0)
    group_fen = models.BigIntegerField(default=0)
    payable_fen = models.BigIntegerField()  # what the payer is charged for this line
    refunded_fen = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    payable_fen=models.F("quantity") * models.F("unit_price_fen")
                    - models.F("discount_fen")
                    - models.F("waived_fen")
                    - models.F("group_fen")
                )
                & Q(payable_fen__gte=0)
                & Q(refunded_fen__gte=0)
                & Q(refunded_fen__lte=models.F("payable_fen")),
                name="commerce_item_price_identity",
            )
        ]

    @property
    def line_total_fen(self) -> int:
        return self.quantity * self.unit_price_fen


class Fulfilment(models.Model):
    """One per (order item, event): the claim that makes a handler run once.
    Written in the transaction that records the payment (or the refund); the
    after-commit runner locks it, calls the owning app's handler and marks it
    done, so a redelivered notice or a re-run task never fulfils twice."""

    class Event(models.TextChoices):
        PAID = "paid", "支付后履约"
        REFUNDED = "refunded", "退款后撤销"

    class Status(models.TextChoices):
        PENDING = "pending", "待处理"
        DONE = "done", "已处理"
        FAILED = "failed", "处理失败（待重试）"

    item = models.ForeignKey(OrderItem, on_delete=models.PROTECT, related_name="fulfilments")
    event = models.CharField(max_length=16, choices=Event.choices)
    # For a refund event: which refund (an item may be refunded in parts).
    refund = models.ForeignKey("Refund", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    delivered = models.BooleanField(default=False)  # the handler said the item is fully delivered
    last_error = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["item", "event"], condition=Q(refund__isnull=True), name="commerce_fulfilment_once"
            ),
            models.UniqueConstraint(
                fields=["item", "event", "refund"], condition=Q(refund__isnull=False), name="commerce_reversal_once"
            ),
        ]


class Payment(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "待支付"  # prepaid at the provider, no notice yet
        SUCCEEDED = "succeeded", "支付成功"
        CLOSED = "closed", "已关闭"  # closed at the provider (order cancelled) before any payment

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payments")
    provider = models.CharField(max_length=32)
    # NULL until paid (the provider's id); NULL keeps unpaid rows out of the unique constraint.
    transaction_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    amount_fen = models.BigIntegerField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    notice_id = models.CharField(max_length=128, blank=True)
    merchant_id = models.CharField(max_length=64, blank=True)
    app_id = models.CharField(max_length=64, blank=True)
    late = models.BooleanField(default=False)  # paid after the order was cancelled: refunded automatically
    created_at = models.DateTimeField(default=timezone.now)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # Exactly-once: a provider's transaction is recorded once, whatever the notices.
            models.UniqueConstraint(
                fields=["provider", "transaction_id"],
                condition=Q(transaction_id__isnull=False),
                name="commerce_payment_transaction_once",
            ),
            models.UniqueConstraint(
                fields=["order"], condition=Q(status="succeeded"), name="commerce_payment_one_success"
            ),
        ]
        indexes = [models.Index(fields=["status", "created_at"])]


class Refund(models.Model):
    class Status(models.TextChoices):
        REQUESTED = "requested", "待审核"  # asked by the patient, waiting for staff
        APPROVED = "approved", "待复核"  # first approval given; the amount needs a second role
        PROCESSING = "processing", "退款处理中"  # sent to the provider, waiting for its notice
        SUCCEEDED = "succeeded", "退款成功"
        FAILED = "failed", "退款失败"  # the provider refused; staff may retry
        REJECTED = "rejected", "已驳回"

    class Source(models.TextChoices):
        PATIENT = "patient", "患者申请"
        LATE_PAYMENT = "late_payment", "订单取消后到账，自动退款"
        AUTOMATIC = (
            "automatic",
            "业务规则自动退款",
        )  # e.g. a visit the doctor ended (R2), through order_refund_automatic

    refund_no = models.CharField(max_length=32, unique=True)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="refunds")
    amount_fen = models.BigIntegerField()
    reason = models.CharField(max_length=200)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.PATIENT)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.REQUESTED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    second_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    rejected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reject_reason = models.CharField(max_length=200, blank=True)
    provider_refund_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount_fen__gt=0), name="commerce_refund_positive"),
        ]
        indexes = [models.Index(fields=["status", "created_at"])]


class RefundLine(models.Model):
    refund = models.ForeignKey(Refund, on_delete=models.PROTECT, related_name="lines")
    item = models.ForeignKey(OrderItem, on_delete=models.PROTECT, related_name="refund_lines")
    amount_fen = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["refund", "item"], name="commerce_refund_line_once"),
            models.CheckConstraint(condition=Q(amount_fen__gt=0), name="commerce_refund_line_positive"),
        ]


class LedgerEntry(models.Model):
    """Append-only, double-entry per order: each movement's entries sum to zero.

    At payment: ``charge`` +total, ``discount`` / ``waiver`` / ``group`` minus
    what the price rules took off, ``payment`` minus the money received. At a
    refund: ``refund`` +the money returned and ``reversal`` minus the sale
    reversed. Money entries (payment, refund) summed and negated equal
    ``order.paid_fen - order.refunded_fen``."""

    class Kind(models.TextChoices):
        CHARGE = "charge", "应收"
        DISCOUNT = "discount", "优惠"
        WAIVER = "waiver", "费用减免"
        GROUP = "group", "团体支付"
        PAYMENT = "payment", "实收"
        REFUND = "refund", "退款"
        REVERSAL = "reversal", "冲销"

    MONEY_KINDS = ("payment", "refund")

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="ledger")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    amount_fen = models.BigIntegerField()
    reference = models.CharField(max_length=64, blank=True)  # transaction id, refund no, rule code
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["order", "created_at"])]


class ReconciliationReport(models.Model):
    class Kind(models.TextChoices):
        BILL = "bill", "对账单核对"

    provider = models.CharField(max_length=32)
    day = models.DateField()  # the bill's business day (Asia/Shanghai)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.BILL)
    bill_lines = models.PositiveIntegerField(default=0)
    ledger_lines = models.PositiveIntegerField(default=0)
    differences = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["provider", "-day"])]


class ReconciliationLine(models.Model):
    class Problem(models.TextChoices):
        MISSING_LOCAL = "missing_local", "本地无记录"
        MISSING_PROVIDER = "missing_provider", "渠道无记录"
        AMOUNT_MISMATCH = "amount_mismatch", "金额不一致"

    report = models.ForeignKey(ReconciliationReport, on_delete=models.CASCADE, related_name="lines")
    problem = models.CharField(max_length=20, choices=Problem.choices)
    kind = models.CharField(max_length=8)  # charge | refund
    order_no = models.CharField(max_length=32)
    reference = models.CharField(max_length=64)  # transaction id or refund no
    local_fen = models.BigIntegerField(null=True, blank=True)
    provider_fen = models.BigIntegerField(null=True, blank=True)

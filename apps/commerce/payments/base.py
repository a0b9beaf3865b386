"""The contract between commerce and the payment gateways (/tmp/commerce_shared.md).

Money is integer fen; ``order_no`` is our out_trade_no (6-32 chars of [A-Za-z0-9_-]).
Providers are configured in ``settings.PAYMENT_PROVIDERS``::

    PAYMENT_PROVIDERS = {"wechat": {"class": "apps.commerce.payments.wechat.WechatPayV3", ...options}}

and obtained with :func:`get_provider`; a provider class with ``sandbox = True`` is refused
in production (``settings.PRODUCTION``, i.e. ``HUB_ENV=production``)."""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from django.conf import settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from .errors import PaymentsCode, PaymentsError

ORDER_NO = re.compile(r"[A-Za-z0-9_-]{6,32}")


class Channel(StrEnum):
    WECHAT_JSAPI = "wechat_jsapi"
    WECHAT_MINI = "wechat_mini"
    ALIPAY_MINI = "alipay_mini"
    SANDBOX = "sandbox"


@dataclass(frozen=True)
class PrepayRequest:
    order_no: str
    amount_fen: int
    description: str
    channel: Channel
    expires_at: datetime
    notify_url: str
    payer_openid: str | None = None  # wechat openid / alipay buyer id


@dataclass(frozen=True)
class PrepayResult:
    provider: str
    # Exactly what the client passes to wx.requestPayment / my.tradePay / the sandbox pay sheet.
    client_params: dict[str, str]
    provider_ref: str  # prepay_id / trade_no / sandbox ref


class NoticeStatus(StrEnum):
    PAID = "paid"
    CLOSED = "closed"
    REFUNDED = "refunded"
    REFUND_FAILED = "refund_failed"


@dataclass(frozen=True)
class PaymentNotice:
    """A verified, decrypted asynchronous notification (or a query answer)."""

    provider: str
    notice_id: str  # the gateway's notification id (idempotency / audit)
    order_no: str
    transaction_id: str
    amount_fen: int
    merchant_id: str
    app_id: str
    status: NoticeStatus
    occurred_at: datetime
    refund_no: str | None = None
    refund_amount_fen: int | None = None


@dataclass(frozen=True)
class RefundResult:
    refund_no: str
    provider_refund_id: str
    status: str  # "processing" | "success" | "failed"


@dataclass(frozen=True)
class BillLine:
    order_no: str
    transaction_id: str
    kind: str  # "charge" | "refund"
    amount_fen: int
    occurred_at: datetime
    refund_no: str | None = None


class NotifyRejected(PaymentsError):
    """A notification refused before anything is recorded; ``.code`` is a :class:`PaymentsCode`."""


@runtime_checkable
class PaymentProvider(Protocol):
    name: str
    merchant_id: str
    app_id: str

    def prepay(self, req: PrepayRequest) -> PrepayResult: ...

    def parse_notify(self, headers: Mapping[str, str], body: bytes) -> PaymentNotice:
        """Verify and decrypt, or raise :class:`NotifyRejected`."""
        ...

    def notify_ack(self, ok: bool) -> tuple[int, str, bytes]:
        """(status, content type, body) the gateway expects as the answer to a notification."""
        ...

    def query(self, order_no: str) -> PaymentNotice | None:
        """The order as the gateway sees it; None = not paid."""
        ...

    def close(self, order_no: str) -> None: ...

    def refund(
        self, *, order_no: str, refund_no: str, amount_fen: int, total_fen: int, reason: str
    ) -> RefundResult: ...

    def bill(self, day: date) -> list[BillLine]: ...


_lock = threading.Lock()
_instances: dict[str, PaymentProvider] = {}


def get_provider(name: str) -> PaymentProvider:
    """The configured provider ``name`` (one instance per process)."""
    with _lock:
        found = _instances.get(name)
        if found is not None:
            return found
        config: Mapping[str, Any] | None = getattr(settings, "PAYMENT_PROVIDERS", {}).get(name)
        if config is None:
            raise PaymentsError(PaymentsCode.UNKNOWN_PROVIDER, provider=name)
        options = dict(config)
        cls = import_string(options.pop("class"))
        if getattr(cls, "sandbox", False) and settings.PRODUCTION:
            raise PaymentsError(PaymentsCode.SANDBOX_IN_PRODUCTION)
        provider: PaymentProvider = cls(name=name, **options)
        _instances[name] = provider
        return provider


def reset_providers(**_: Any) -> None:
    """Forget the built providers (settings changed, tests)."""
    with _lock:
        _instances.clear()


def _on_setting_changed(*, setting: str, **_: Any) -> None:
    if setting in {"PAYMENT_PROVIDERS", "PRODUCTION"} or setting.startswith("PAYMENTS_"):
        reset_providers()


setting_changed.connect(_on_setting_changed)


def check_order_no(order_no: str) -> str:
    if not ORDER_NO.fullmatch(order_no):
        raise PaymentsError(PaymentsCode.BAD_REQUEST, field="order_no")
    return order_no

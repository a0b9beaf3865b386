"""The receipt platform interface (财政电子票据 / 电子发票): one per deployment, chosen
by ``settings.RECEIPTS_PLATFORM`` (a dotted path loaded through ``hub.outside``, so a
sandbox is refused in production)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings

from hub.outside import load


@dataclass(frozen=True)
class ReceiptLine:
    title: str  # the fee item as printed (e.g. 诊查费); never a diagnosis
    amount_fen: int


@dataclass(frozen=True)
class ReceiptRequest:
    request_no: str  # our business serial number: the platform issues once per number
    order_no: str
    payer_name: str  # the 就诊人 the fee is for, as the receipt names them
    amount_fen: int
    lines: tuple[ReceiptLine, ...]
    paid_at: dt.datetime


@dataclass(frozen=True)
class IssuedReceipt:
    code: str  # 票据代码 (8 digits)
    number: str  # 票据号码 (10 digits)
    check_code: str  # 校验码 (6 characters): with code and number, what a payer verifies online
    issued_at: dt.datetime
    view_url: str = ""  # the platform's page for this receipt, when it has one


class ReceiptPlatformError(Exception):
    """The platform refused or failed; ``retryable`` says whether trying later can help."""

    def __init__(self, code: str, message: str, *, retryable: bool) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable


class ReceiptPlatform(Protocol):
    name: str

    def issue(self, request: ReceiptRequest) -> IssuedReceipt: ...

    def void(self, *, request_no: str, code: str, number: str, reason: str) -> dt.datetime: ...


def get_platform() -> ReceiptPlatform:
    platform: ReceiptPlatform = load(settings.RECEIPTS_PLATFORM, label="RECEIPTS_PLATFORM")()
    return platform

"""The receipt platform's offline stand-in (never in production: ``hub.outside``).

It behaves like the provincial platforms: one receipt per business serial number
(asking again answers the same receipt), numbers and a check code the payer can
verify (:meth:`SandboxReceiptPlatform.verify`), voiding only what it issued, and
failures on demand (``fail_next``: the platform busy, retryable, or the request
refused for good) so the retry and give-up paths run in tests and the demo."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from .base import IssuedReceipt, ReceiptPlatformError, ReceiptRequest

_PREFIX = "receipts-sandbox"
_TTL = 30 * 86400


def _mac(*parts: str) -> str:
    return hmac.new(settings.SANDBOX_SECRET.encode(), "|".join(parts).encode(), hashlib.sha256).hexdigest()


class SandboxReceiptPlatform:
    name = "sandbox"
    sandbox = True  # refused in production (hub.outside)

    @staticmethod
    def fail_next(count: int = 1, *, retryable: bool = True) -> None:
        """Make the next ``count`` calls fail (a test or demo control)."""
        cache.set(f"{_PREFIX}:fail", {"count": count, "retryable": retryable}, _TTL)

    @staticmethod
    def _maybe_fail() -> None:
        plan = cache.get(f"{_PREFIX}:fail")
        if not plan or plan["count"] <= 0:
            return
        cache.set(f"{_PREFIX}:fail", {**plan, "count": plan["count"] - 1}, _TTL)
        if plan["retryable"]:
            raise ReceiptPlatformError("E0500", "票据平台繁忙，请稍后重试", retryable=True)
        raise ReceiptPlatformError("E0102", "开票单位信息不完整，平台拒绝开具", retryable=False)

    @staticmethod
    def issued_count() -> int:
        return int(cache.get(f"{_PREFIX}:issued", 0))

    @staticmethod
    def _number(request_no: str) -> str:
        return f"{int(_mac('number', request_no)[:12], 16) % 10**10:010d}"

    def issue(self, request: ReceiptRequest) -> IssuedReceipt:
        self._maybe_fail()
        if request.amount_fen <= 0 or sum(line.amount_fen for line in request.lines) != request.amount_fen:
            raise ReceiptPlatformError("E0201", "票据金额与明细合计不符", retryable=False)
        key = f"{_PREFIX}:req:{request.request_no}"
        known = cache.get(key)
        if known is not None:
            return IssuedReceipt(**{**known, "issued_at": dt.datetime.fromisoformat(known["issued_at"])})
        year = timezone.localdate().year % 100
        code = f"4401{year:02d}01"  # region 4401, the year, 01 = 医疗收费票据
        number = self._number(request.request_no)
        receipt = IssuedReceipt(
            code=code,
            number=number,
            check_code=_mac("check", code, number, str(request.amount_fen))[:6].upper(),
            issued_at=timezone.now(),
        )
        cache.set(
            key,
            {
                "code": receipt.code,
                "number": receipt.number,
                "check_code": receipt.check_code,
                "issued_at": receipt.issued_at.isoformat(),
            },
            _TTL,
        )
        try:
            cache.incr(f"{_PREFIX}:issued")
        except ValueError:
            cache.set(f"{_PREFIX}:issued", 1, _TTL)
        return receipt

    def void(self, *, request_no: str, code: str, number: str, reason: str) -> dt.datetime:
        self._maybe_fail()
        # Numbers are derived from the serial number, so the sandbox knows its receipts
        # without keeping state (the embedded default's cache is per process).
        if number != self._number(request_no):
            raise ReceiptPlatformError("E0404", "票据不存在", retryable=False)
        cache.set(f"{_PREFIX}:void:{code}{number}", reason[:100], _TTL)
        return timezone.now()

    @staticmethod
    def verify(*, code: str, number: str, check_code: str, amount_fen: int) -> str:
        """What the platform's public check answers: 有效 / 已冲红 / 不存在."""
        if not hmac.compare_digest(check_code, _mac("check", code, number, str(amount_fen))[:6].upper()):
            return "不存在"
        return "已冲红" if cache.get(f"{_PREFIX}:void:{code}{number}") is not None else "有效"

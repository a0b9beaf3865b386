"""A fake payment gateway for commerce's tests (the gateway is the outside party;
P's real adapters and sandbox have their own tests). It keeps trades in memory,
signs its notices with an HMAC over the body and refuses a bad signature, like
a gateway would; tests drive it (pay, fail a refund, seed a bill line)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from typing import Any

from django.utils import timezone

from apps.commerce.payments.base import (
    BillLine,
    NoticeStatus,
    NotifyRejected,
    PaymentNotice,
    PrepayRequest,
    PrepayResult,
    RefundResult,
)
from apps.commerce.payments.errors import PaymentsCode, PaymentsError


class FakeGateway:
    sandbox = True

    def __init__(
        self, *, name: str, merchant_id: str = "1900000109", app_id: str = "wxfake0001", secret: str = "k"
    ) -> None:
        self.name = name
        self.merchant_id = merchant_id
        self.app_id = app_id
        self.secret = secret.encode()
        self.trades: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.closed: list[str] = []
        self.prepays: list[str] = []
        self.refund_answer = "processing"  # what refund() answers: processing | success | failed
        self.extra_bill: list[BillLine] = []
        self.fail_next: set[str] = set()  # "prepay" | "refund": the next such call fails like an unreachable gateway

    # --- the contract ---------------------------------------------------------------

    def _maybe_fail(self, call: str) -> None:
        if call in self.fail_next:
            self.fail_next.discard(call)
            raise PaymentsError(PaymentsCode.GATEWAY_UNAVAILABLE)

    def prepay(self, req: PrepayRequest) -> PrepayResult:
        self._maybe_fail("prepay")
        self.prepays.append(req.order_no)
        trade = self.trades.setdefault(
            req.order_no, {"amount": req.amount_fen, "state": "NOTPAY", "ref": f"prepay_{secrets.token_hex(6)}"}
        )
        return PrepayResult(provider=self.name, client_params={"prepay_ref": trade["ref"]}, provider_ref=trade["ref"])

    def parse_notify(self, headers: Mapping[str, str], body: bytes) -> PaymentNotice:
        given = headers.get("X-Fake-Signature", "")
        if not hmac.compare_digest(given, self.sign(body)):
            raise NotifyRejected(PaymentsCode.BAD_SIGNATURE)
        data = json.loads(body)
        data["status"] = NoticeStatus(data["status"])
        data["occurred_at"] = dt.datetime.fromisoformat(data["occurred_at"])
        return PaymentNotice(**data)

    def notify_ack(self, ok: bool) -> tuple[int, str, bytes]:
        if ok:
            return 200, "application/json", b'{"code":"SUCCESS"}'
        return 500, "application/json", b'{"code":"FAIL","message":"failed"}'

    def query(self, order_no: str) -> PaymentNotice | None:
        trade = self.trades.get(order_no)
        if trade is None or trade["state"] != "SUCCESS":
            return None
        return self._notice(order_no)

    def close(self, order_no: str) -> None:
        self.closed.append(order_no)
        if order_no in self.trades and self.trades[order_no]["state"] == "NOTPAY":
            self.trades[order_no]["state"] = "CLOSED"

    def refund(self, *, order_no: str, refund_no: str, amount_fen: int, total_fen: int, reason: str) -> RefundResult:
        self._maybe_fail("refund")
        self.refunds[refund_no] = {"order_no": order_no, "amount": amount_fen, "total": total_fen, "at": timezone.now()}
        return RefundResult(refund_no=refund_no, provider_refund_id=f"r_{refund_no}", status=self.refund_answer)

    def bill(self, day: dt.date) -> list[BillLine]:
        lines = [
            BillLine(order_no=o, transaction_id=t["txn"], kind="charge", amount_fen=t["amount"], occurred_at=t["at"])
            for o, t in self.trades.items()
            if t["state"] == "SUCCESS"
        ]
        lines += [
            BillLine(
                order_no=r["order_no"],
                transaction_id=self.trades[r["order_no"]]["txn"],
                kind="refund",
                amount_fen=r["amount"],
                occurred_at=r["at"],
                refund_no=no,
            )
            for no, r in self.refunds.items()
            if r.get("settled")
        ]
        return lines + self.extra_bill

    # --- test controls --------------------------------------------------------------------

    def sign(self, body: bytes) -> str:
        return hmac.new(self.secret, body, hashlib.sha256).hexdigest()

    def pay(self, order_no: str, *, amount_fen: int | None = None) -> PaymentNotice:
        """The patient pays at the gateway: the trade succeeds; returns the notice it would send."""
        trade = self.trades[order_no]
        trade["state"] = "SUCCESS"
        trade.setdefault("txn", f"4200{secrets.token_hex(8)}")
        trade["at"] = timezone.now()
        if amount_fen is not None:
            trade["amount"] = amount_fen
        return self._notice(order_no)

    def _notice(self, order_no: str, **over: Any) -> PaymentNotice:
        trade = self.trades[order_no]
        fields: dict[str, Any] = {
            "provider": self.name,
            "notice_id": f"n_{secrets.token_hex(6)}",
            "order_no": order_no,
            "transaction_id": trade["txn"],
            "amount_fen": trade["amount"],
            "merchant_id": self.merchant_id,
            "app_id": self.app_id,
            "status": NoticeStatus.PAID,
            "occurred_at": trade["at"],
        } | over
        return PaymentNotice(**fields)

    def refund_notice(self, refund_no: str, *, ok: bool = True) -> PaymentNotice:
        r = self.refunds[refund_no]
        r["settled"] = ok
        return self._notice(
            r["order_no"],
            status=NoticeStatus.REFUNDED if ok else NoticeStatus.REFUND_FAILED,
            refund_no=refund_no,
            refund_amount_fen=r["amount"],
        )

    @staticmethod
    def body(notice: PaymentNotice) -> bytes:
        data = {k: getattr(notice, k) for k in notice.__dataclass_fields__}
        data["occurred_at"] = notice.occurred_at.isoformat()
        data["status"] = str(notice.status)
        return json.dumps(data).encode()

"""Item kinds: what the domain apps sell through commerce, registered in their ``ready()``.

commerce is a core app and imports no domain app; a domain app tells it how to
price, check and fulfil its items::

    from apps.commerce.registry import Quote, register_item_kind

    register_item_kind(
        "prescription",
        title="处方药品",
        quote=lambda patient, ref, quantity: Quote(title="…", unit_price_fen=1200),
        can_checkout=lambda patient, ref, quantity: None if approved(ref) else "处方尚未通过药师审核",
        on_paid=lambda item: dispense(item.ref),     # True: delivered now; False: the app calls back later
        on_refunded=lambda item: cancel_dispense(item.ref),
    )

Handlers get plain data (:class:`ItemEvent`), run after commit, once per order
item (a ``Fulfilment`` row claims each run), and may be re-run after a failure:
they must be idempotent on the owning app's side too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Quote:
    """The owning app's price for one line (the client never sends a price)."""

    title: str
    unit_price_fen: int
    discount_fen: int = 0  # per line, not per unit
    payer: str = "self"  # "self" | "group" (paid by the patient's group contract, recorded not charged)


@dataclass(frozen=True)
class ItemEvent:
    """What a handler is told about one order item."""

    order_no: str
    item_id: int
    kind: str
    ref: str
    quantity: int
    patient_id: int
    payer_id: int
    payable_fen: int
    refund_fen: int = 0  # for on_refunded: this refund's amount on the item
    refund_no: str = ""


QuoteFn = Callable[[Any, str, int], Quote]  # (patient, ref, quantity)
CheckFn = Callable[[Any, str, int], "str | None"]  # None: may be bought; else the Chinese reason
Handler = Callable[[ItemEvent], "bool | None"]


@dataclass(frozen=True)
class ItemKind:
    kind: str
    title: str
    quote: QuoteFn
    can_checkout: CheckFn | None = None
    on_paid: Handler | None = None  # returns True when the item is delivered at once
    on_refunded: Handler | None = None


_kinds: dict[str, ItemKind] = {}


def register_item_kind(
    kind: str,
    *,
    title: str,
    quote: QuoteFn,
    can_checkout: CheckFn | None = None,
    on_paid: Handler | None = None,
    on_refunded: Handler | None = None,
) -> ItemKind:
    """Register (or replace: autoreload, tests) the handlers of an item kind."""
    entry = ItemKind(
        kind=kind, title=title, quote=quote, can_checkout=can_checkout, on_paid=on_paid, on_refunded=on_refunded
    )
    _kinds[kind] = entry
    return entry


def unregister_item_kind(kind: str) -> None:
    _kinds.pop(kind, None)


def item_kind(kind: str) -> ItemKind | None:
    return _kinds.get(kind)


def item_kinds() -> list[str]:
    return sorted(_kinds)

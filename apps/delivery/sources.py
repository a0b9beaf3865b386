"""What a shipment carries, owned by another app, reached through registered hooks.

Delivery is a core app: it never imports commerce or pharmacy. The app that owns
a kind of source registers it in its ``AppConfig.ready()``::

    from apps.delivery.sources import ShipDecision, register_source

    def _can_ship(source_id: str) -> ShipDecision:
        rx = Prescription.objects.get(pk=source_id)
        if rx.status != "approved":
            return ShipDecision.refuse("处方尚未经药师审核通过，不能发货")
        return ShipDecision(patient_id=rx.patient_id, methods=("courier", "pickup"))

    register_source("pharmacy.prescription", can_ship=_can_ship,
                    on_delivered=_mark_delivered, on_failed=_mark_failed)

``can_ship`` answers before a shipment is created (and again before a courier
is booked); it names the patient (so nobody can ship one patient's medicine to
another's address) and the methods allowed (特定全营养 FSMP: pickup only).
``on_delivered`` / ``on_failed`` are called with a :class:`ShipmentRef` inside
the transaction that moves the shipment, so the source and the shipment
change together or not at all. Hooks get ids and codes only."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShipDecision:
    ok: bool = True
    patient_id: int | None = None
    methods: tuple[str, ...] = ("courier", "pickup")
    reason: str = ""  # Chinese, shown to staff when ok is False

    @classmethod
    def refuse(cls, reason: str) -> ShipDecision:
        return cls(ok=False, reason=reason, methods=())


@dataclass(frozen=True)
class ShipmentRef:
    """What the owning app is told: ids and codes, never the recipient."""

    shipment_id: int
    number: str
    source_kind: str
    source_id: str
    status: str
    method: str


@dataclass(frozen=True)
class SourceHooks:
    kind: str
    can_ship: Callable[[str], ShipDecision]
    on_delivered: Callable[[ShipmentRef], None] = field(default=lambda ref: None)
    on_failed: Callable[[ShipmentRef], None] = field(default=lambda ref: None)


_sources: dict[str, SourceHooks] = {}


def register_source(
    kind: str,
    *,
    can_ship: Callable[[str], ShipDecision],
    on_delivered: Callable[[ShipmentRef], None] | None = None,
    on_failed: Callable[[ShipmentRef], None] | None = None,
) -> None:
    """Register (or replace: autoreload, tests) the hooks of a source kind ``"<app>.<what>"``."""
    if "." not in kind or len(kind) > 48:
        raise ValueError(f"source kind {kind!r} must be '<app>.<what>' (at most 48 characters)")
    _sources[kind] = SourceHooks(
        kind=kind,
        can_ship=can_ship,
        on_delivered=on_delivered or (lambda ref: None),
        on_failed=on_failed or (lambda ref: None),
    )


def unregister_source(kind: str) -> None:
    _sources.pop(kind, None)


def source(kind: str) -> SourceHooks | None:
    return _sources.get(kind)


def kinds() -> list[str]:
    return sorted(_sources)

"""Price rules, applied in a fixed order to the owning apps' quotes:

1. the line's own discount (from its quote), capped at the line total;
2. package prices: when an order holds every line of a registered package,
   the difference between the lines' price and the package price is a
   discount spread over those lines (in proportion, remainder on the last);
3. fee waivers: a rule registered by kind pair ("a tea-bag purchase waives the
   consultation fee"): each self-paid line of the trigger kind with something
   left to pay waives one line of the waived kind, once;
4. group-paid lines: what is left is paid by the group, recorded not charged.

Everything is integer fen. The result is per line and in total; the ledger
records each part at payment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Package:
    code: str
    title: str
    items: dict[tuple[str, str], int]  # (kind, ref) -> quantity
    price_fen: int


@dataclass(frozen=True)
class Waiver:
    code: str
    title: str
    trigger_kind: str  # buying this ...
    waived_kind: str  # ... waives one of these


@dataclass(frozen=True)
class PricedLine:
    kind: str
    ref: str
    title: str
    quantity: int
    unit_price_fen: int
    discount_fen: int = 0
    payer: str = "self"
    waived_by: str = ""
    waived_fen: int = 0
    group_fen: int = 0

    @property
    def line_total_fen(self) -> int:
        return self.quantity * self.unit_price_fen

    @property
    def payable_fen(self) -> int:
        return self.line_total_fen - self.discount_fen - self.waived_fen - self.group_fen


@dataclass(frozen=True)
class Priced:
    lines: list[PricedLine]
    packages: list[str] = field(default_factory=list)  # codes of the packages applied
    waivers: list[str] = field(default_factory=list)  # codes of the waivers applied (once per use)

    @property
    def total_fen(self) -> int:
        return sum(x.line_total_fen for x in self.lines)

    @property
    def discount_fen(self) -> int:
        return sum(x.discount_fen for x in self.lines)

    @property
    def waived_fen(self) -> int:
        return sum(x.waived_fen for x in self.lines)

    @property
    def group_fen(self) -> int:
        return sum(x.group_fen for x in self.lines)

    @property
    def payable_fen(self) -> int:
        return sum(x.payable_fen for x in self.lines)


_packages: dict[str, Package] = {}
_waivers: dict[str, Waiver] = {}


def register_package(code: str, *, title: str, items: dict[tuple[str, str], int], price_fen: int) -> Package:
    if price_fen < 0 or not items or any(q <= 0 for q in items.values()):
        raise ValueError(f"package {code}: a price >= 0 and positive quantities")
    package = Package(code=code, title=title, items=dict(items), price_fen=price_fen)
    _packages[code] = package
    return package


def register_waiver(code: str, *, title: str, trigger_kind: str, waived_kind: str) -> Waiver:
    if trigger_kind == waived_kind:
        raise ValueError(f"waiver {code}: a kind cannot waive itself")
    waiver = Waiver(code=code, title=title, trigger_kind=trigger_kind, waived_kind=waived_kind)
    _waivers[code] = waiver
    return waiver


def unregister(code: str) -> None:
    _packages.pop(code, None)
    _waivers.pop(code, None)


def waivers() -> list[Waiver]:
    return [_waivers[c] for c in sorted(_waivers)]


def _spread(amount: int, weights: list[int], caps: list[int]) -> list[int]:
    """Split ``amount`` in proportion to ``weights`` (remainder on the last), each share capped."""
    total = sum(weights)
    shares = [amount * w // total if total else 0 for w in weights]
    shares[-1] += amount - sum(shares)
    return [min(s, c) for s, c in zip(shares, caps, strict=True)]


def _apply_packages(lines: list[PricedLine], applied: list[str]) -> list[PricedLine]:
    for package in (_packages[c] for c in sorted(_packages)):
        index = {(x.kind, x.ref): i for i, x in enumerate(lines)}
        if any(k not in index or lines[index[k]].quantity < q for k, q in package.items.items()):
            continue
        members = [index[k] for k in package.items]
        base = [package.items[(lines[i].kind, lines[i].ref)] * lines[i].unit_price_fen for i in members]
        saving = sum(base) - package.price_fen
        if saving <= 0:
            continue
        caps = [lines[i].line_total_fen - lines[i].discount_fen for i in members]
        for i, share in zip(members, _spread(saving, base, caps), strict=True):
            lines[i] = replace(lines[i], discount_fen=lines[i].discount_fen + share)
        applied.append(package.code)
    return lines


def _apply_waivers(lines: list[PricedLine], applied: list[str]) -> list[PricedLine]:
    for waiver in waivers():
        triggers = [x for x in lines if x.kind == waiver.trigger_kind and x.payer == "self" and x.payable_fen > 0]
        for _ in triggers:
            target = next(
                (
                    i
                    for i, x in enumerate(lines)
                    if x.kind == waiver.waived_kind and x.payer == "self" and not x.waived_by and x.payable_fen > 0
                ),
                None,
            )
            if target is None:
                break
            line = lines[target]
            lines[target] = replace(line, waived_by=waiver.code, waived_fen=line.payable_fen)
            applied.append(waiver.code)
    return lines


def price(lines: Sequence[PricedLine]) -> Priced:
    """Apply the rules to quoted lines (``discount_fen`` from the quote, ``payer`` self/group)."""
    out = [replace(x, discount_fen=max(0, min(x.discount_fen, x.line_total_fen))) for x in lines]
    packages: list[str] = []
    waived: list[str] = []
    out = _apply_packages(out, packages)
    out = _apply_waivers(out, waived)
    out = [replace(x, group_fen=x.payable_fen) if x.payer == "group" else x for x in out]
    return Priced(lines=out, packages=packages, waivers=waived)

"""Scoring a completed answer sheet against a stored definition. Pure: no
database, no settings lookups (the caller passes the norm and rounding), so
every scale can be tested against answer sheets with known results."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from .definitions import standardise

NORMS = ("china", "zung")
ROUNDINGS = ("truncate", "round")
_OPS: dict[str, Callable[[int, int], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "==": operator.eq,
    "<=": operator.le,
    "<": operator.lt,
}


class AnswerError(ValueError):
    def __init__(self, message: str, *, item: int | None = None) -> None:
        super().__init__(message)
        self.item = item


@dataclass(frozen=True)
class Score:
    raw: int
    standard: int
    norm: str  # key into the definition's norms
    norm_label: str
    rounding: str  # none | truncate | round
    band_code: str
    band_label: str
    band_severity: int
    band_advice: str
    flags: list[dict[str, Any]] = field(default_factory=list)
    critical: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def option_values(definition: Mapping[str, Any], item_no: int) -> set[int]:
    items = definition["items"]
    if not 1 <= item_no <= len(items):
        raise AnswerError("题目不存在", item=item_no)
    return {o["value"] for o in items[item_no - 1]["options"]}


def check_answer(definition: Mapping[str, Any], item_no: int, value: int) -> None:
    if value not in option_values(definition, item_no):
        raise AnswerError(f"第{item_no}题的选项无效", item=item_no)


def critical_hits(definition: Mapping[str, Any], answers: Mapping[int, int]) -> list[dict[str, Any]]:
    """Critical-item rules look at the one item's answer only, never at the
    total: a low total with item 9 answered 1 still fires."""
    hits = []
    for rule in definition.get("critical", []):
        value = answers.get(rule["item"])
        if value is not None and _OPS[rule["op"]](value, rule["value"]):
            hits.append(
                {
                    "code": rule["code"],
                    "item": rule["item"],
                    "value": value,
                    "label": rule["label"],
                    "action": rule.get("action", ""),
                }
            )
    return hits


def score(definition: Mapping[str, Any], answers: Mapping[int, int], *, norm: str, rounding: str) -> Score:
    """Score a complete sheet. ``norm`` and ``rounding`` are the hospital's
    settings; they apply only where the definition defers to the setting."""
    items = definition["items"]
    missing = [n for n in range(1, len(items) + 1) if n not in answers]
    if missing:
        raise AnswerError(f"还有{len(missing)}题未作答", item=missing[0])
    extra = [n for n in answers if not 1 <= n <= len(items)]
    if extra:
        raise AnswerError("题目不存在", item=extra[0])
    for item_no, value in answers.items():
        check_answer(definition, item_no, value)

    raw = sum(answers.values())
    scoring = definition["scoring"]
    used_rounding = scoring["rounding"]
    if used_rounding == "setting":
        if rounding not in ROUNDINGS:
            raise ValueError(f"unknown rounding setting {rounding!r}")
        used_rounding = rounding
    multiplier = Decimal(scoring["multiplier"])
    standard = raw if multiplier == 1 else standardise(raw, multiplier, used_rounding)

    norm_key = "default"
    if definition["norm"] == "setting":
        if norm not in NORMS:
            raise ValueError(f"unknown norm setting {norm!r}")
        norm_key = norm
    chosen = definition["norms"][norm_key]
    band = next(b for b in chosen["bands"] if b["min"] <= standard <= b["max"])
    flags = [
        {"code": f.get("code", ""), "label": f["label"]}
        for f in definition.get("flags", [])
        if _OPS[f["op"]](standard, f["value"])
    ]
    return Score(
        raw=raw,
        standard=standard,
        norm=norm_key,
        norm_label=chosen["label"],
        rounding=used_rounding,
        band_code=band["code"],
        band_label=band["label"],
        band_severity=band["severity"],
        band_advice=band["advice"],
        flags=flags,
        critical=critical_hits(definition, answers),
    )

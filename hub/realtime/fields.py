"""Field checks for inbound socket frames: plain ``type``/range/length tests,
cheap enough for every frame on the hot path (no model per frame).

Each raises ``hub.errors.Invalid`` (``validation_error``, a Chinese message):
the bad frame is answered alone and never reaches a batch. Booleans are never
integers here (``True`` is an ``int`` in Python, not a conversation id)."""

from __future__ import annotations

from typing import Any

from hub.errors import Invalid

# PostgreSQL bigint: every id and seq column. Larger values would fail in the
# database (and abort the transaction they share) instead of being refused.
BIGINT_MAX = 2**63 - 1


def is_int(value: Any) -> bool:
    return type(value) is int


def positive_id(frame: dict[str, Any], key: str, label: str) -> int:
    value = frame.get(key)
    if type(value) is not int or not 0 < value <= BIGINT_MAX:
        raise Invalid(f"{label}格式错误", field=key)
    return value


def count(frame: dict[str, Any], key: str, *, default: int | None = None, low: int = 0, high: int = BIGINT_MAX) -> int:
    value = frame.get(key, default)
    if type(value) is not int or not low <= value <= high:
        raise Invalid(f"{key} 须为 {low} 到 {high} 之间的整数", field=key)
    return value


def text(frame: dict[str, Any], key: str, label: str, *, max_len: int, min_len: int = 1) -> str:
    value = frame.get(key)
    if type(value) is not str or not min_len <= len(value) <= max_len:
        raise Invalid(f"{label}格式错误", field=key)
    return value


def obj(frame: dict[str, Any], key: str, label: str) -> dict[str, Any]:
    value = frame.get(key)
    if type(value) is not dict:
        raise Invalid(f"{label}格式错误", field=key)
    return value

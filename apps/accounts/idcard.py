"""Mainland China resident ID numbers (GB 11643-1999): 18 characters, ISO 7064
MOD 11-2 check digit, birth date in positions 7-14, sex from position 17."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


@dataclass(frozen=True)
class IdCardInfo:
    number: str
    birth_date: dt.date
    sex: str  # "M" | "F"


class InvalidIdNumber(ValueError):
    pass


def check_digit(first17: str) -> str:
    return _CHECK[sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def parse_id_number(raw: str, *, today: dt.date | None = None) -> IdCardInfo:
    number = raw.strip().upper()
    if len(number) != 18 or not number[:17].isdigit() or not (number[17].isdigit() or number[17] == "X"):
        raise InvalidIdNumber("身份证号应为18位")
    if check_digit(number[:17]) != number[17]:
        raise InvalidIdNumber("身份证号校验位不正确")
    try:
        birth = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError as exc:
        raise InvalidIdNumber("身份证号中的出生日期无效") from exc
    today = today or dt.date.today()
    if birth > today or birth.year < 1900:
        raise InvalidIdNumber("身份证号中的出生日期无效")
    return IdCardInfo(number=number, birth_date=birth, sex="M" if int(number[16]) % 2 else "F")


def make_id_number(prefix6: str, birth: dt.date, serial3: str) -> str:
    """Build a valid number (for demo data and tests)."""
    first17 = f"{prefix6}{birth:%Y%m%d}{serial3}"
    return first17 + check_digit(first17)

"""Staff password policy for 等保 level 3 (see docs/adr/0003-password-policy.md):
at least 8 characters, 3 of 4 character classes, not a common password, not the
username or phone, not one of the last 5, expiring after 90 days."""

from __future__ import annotations

import datetime as dt
import secrets
import string
from functools import lru_cache

from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.contrib.auth.password_validation import CommonPasswordValidator
from django.utils import timezone

from .models import User


@lru_cache(maxsize=1)
def _common() -> frozenset[str]:
    return frozenset(CommonPasswordValidator().passwords)


def _classes(password: str) -> int:
    return sum(
        [
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        ]
    )


def password_problems(password: str, *, user: User | None = None, username: str = "") -> list[str]:
    """Every rule the password breaks, as Chinese sentences (empty when it passes)."""
    problems: list[str] = []
    if len(password) < 8:
        problems.append("密码至少8位")
    if _classes(password) < 3:
        problems.append("密码须包含大写字母、小写字母、数字、符号中的至少三类")
    if password.lower().strip() in _common():
        problems.append("密码过于常见")
    name = (username or (user.username if user else "")).lower()
    if name and name in password.lower():
        problems.append("密码不能包含用户名")
    if user is not None:
        phone = user.phone
        if phone and phone in password:
            problems.append("密码不能包含手机号")
        recent = user.password_history.order_by("-created_at")[: settings.PASSWORD_HISTORY]
        if any(check_password(password, h.password) for h in recent):
            problems.append(f"不能与最近{settings.PASSWORD_HISTORY}次使用的密码相同")
    return problems


def password_expired(user: User, *, now: dt.datetime | None = None) -> bool:
    if user.must_change_password:
        return True
    if user.password_changed_at is None:
        return True
    now = now or timezone.now()
    return now - user.password_changed_at > dt.timedelta(days=settings.PASSWORD_MAX_AGE_DAYS)


def generate_password(length: int = 14) -> str:
    """A random password that satisfies the policy."""
    alphabet = string.ascii_letters + string.digits + "!@#$%^&*-_"
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(length))
        if _classes(candidate) == 4:
            return candidate

"""Commerce demo data (registered with apps.accounts.demo); filled in below."""

from __future__ import annotations


def seed_commerce() -> str:
    return ""

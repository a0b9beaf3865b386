"""Demo content from every module, for ``seed_demo``.

``seed_demo`` (accounts, a core app) creates the people and care teams; domain
modules add their own history so each page has real content on first sign-in,
by registering a seeder in ``AppConfig.ready()``::

    from apps.accounts.demo import register_demo_seeder
    register_demo_seeder("psych", seed_psych_history)

A seeder is called inside seed_demo's transaction, must be idempotent (seed_demo
runs at every demo start) and returns a line for the printed summary (or "")."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from hub import crypto

from .models import User
from .roles import Role

DemoSeeder = Callable[[], str]

_seeders: dict[str, DemoSeeder] = {}


def register_demo_seeder(module: str, seeder: DemoSeeder) -> None:
    _seeders[module] = seeder


def run_demo_seeders() -> list[str]:
    return [line for _, seeder in sorted(_seeders.items()) if (line := seeder())]


def demo_patient(phone: str) -> User | None:
    """The demo patient account of ``phone``, found by the phone's lookup hash (demo
    usernames are random like real ones, so no username or /me carries the number)."""
    return User.objects.filter(role=Role.PATIENT, phone_hash=crypto.lookup_hash(phone, context="phone")).first()


def demo_username() -> str:
    return f"p_{secrets.token_hex(8)}"

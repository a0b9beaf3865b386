"""Who is calling: the identity provider the hub core uses, registered by an app.

The hub core imports no domain or core app. The accounts app registers one
:class:`Identity` when Django is ready (``apps.accounts.identity``); the API's
``BearerAuth``, the role guard, the socket's auth frame and its periodic
re-check and the ticket endpoint all go through it, so the token rules live
in accounts only."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest


@dataclass(frozen=True)
class Identity:
    # raw bearer token -> the live token (``.user``, ``.pk``) or None; HTTP and socket
    authenticate: Callable[[str], Any]
    # token id -> still live (the socket's periodic re-check)
    token_live: Callable[[int], bool]
    # live token -> a single-use socket ticket
    ticket_issue: Callable[[Any], str]
    # ticket -> the live token it stands for (consumed once) or None
    ticket_redeem: Callable[[str], Any]
    # record a refused role check (request, user or None)
    access_denied: Callable[[HttpRequest, Any], None]


_identity: list[Identity] = []


def register_identity(identity: Identity) -> None:
    if _identity and _identity[0] != identity:
        raise ValueError("an identity provider is registered already")
    _identity[:] = [identity]


def identity() -> Identity:
    if not _identity:
        raise ImproperlyConfigured("no identity provider registered (apps.accounts not installed?)")
    return _identity[0]

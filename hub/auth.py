"""Bearer-token authentication for the API, and role guards.

Both go through the registered :func:`hub.identity.identity` (the accounts
app's token rules); the hub core itself imports no app."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.http import HttpRequest
from ninja.security import HttpBearer

from hub.errors import Forbidden
from hub.identity import identity


class BearerAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Any:
        live = identity().authenticate(token)
        if live is None:
            return None
        request.user = live.user
        request.auth_token = live  # type: ignore[attr-defined]
        return live.user


def require_roles(request: HttpRequest, roles: Iterable[str]) -> Any:
    user = request.auth  # type: ignore[attr-defined]
    if user is None or user.role not in set(roles):
        identity().access_denied(request, user)
        raise Forbidden()
    return user

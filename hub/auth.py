"""Bearer-token authentication for the API, and role guards."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.http import HttpRequest
from ninja.security import HttpBearer

from hub.errors import Forbidden


class BearerAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Any:
        from apps.accounts.services import token_authenticate

        live = token_authenticate(token)
        if live is None:
            return None
        request.user = live.user
        request.auth_token = live  # type: ignore[attr-defined]
        return live.user


def require_roles(request: HttpRequest, roles: Iterable[str]) -> Any:
    user = request.auth  # type: ignore[attr-defined]
    if user is None or user.role not in set(roles):
        from apps.audit.services import audit_record

        audit_record(
            action="access.denied",
            actor=user,
            result="denied",
            detail={"path": request.path[:200], "method": request.method},
        )
        raise Forbidden()
    return user

"""The accounts app as the hub core's identity provider (``hub.identity``).

Registered from ``AccountsConfig.ready``: the hub core imports no app, so the
API's bearer auth, the role guard's denial record and the socket's auth and
re-check reach the token rules of ``apps.accounts.services`` through here."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from apps.audit.services import audit_record
from hub.identity import Identity, register_identity

from . import services


def _ticket_issue(token: Any) -> str:
    return services.realtime_ticket_issue(token=token)


def _access_denied(request: HttpRequest, user: Any) -> None:
    audit_record(
        action="access.denied",
        actor=user,
        result="denied",
        detail={"path": request.path[:200], "method": request.method},
    )


def register() -> None:
    register_identity(
        Identity(
            authenticate=services.token_authenticate,
            token_live=services.token_live,
            ticket_issue=_ticket_issue,
            ticket_redeem=services.realtime_ticket_redeem,
            access_denied=_access_denied,
        )
    )

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from ninja import Router, Schema

from hub.errors import errors
from hub.identity import identity

router = Router()


class SocketTicketOut(Schema):
    ticket: str
    expires_in: int


@router.post("/ticket", response={200: SocketTicketOut, **errors()}, summary="获取实时连接票据")
def ticket(request: HttpRequest) -> dict[str, Any]:
    """A single-use ticket for the socket's first frame (mini-programs)."""
    raw = identity().ticket_issue(request.auth_token)  # type: ignore[attr-defined]
    return {"ticket": raw, "expires_in": settings.WS_TICKET_TTL_SECONDS}

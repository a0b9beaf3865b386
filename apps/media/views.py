"""The web-view's way in (:mod:`apps.media.passes`): plain views beside WHIP/WHEP, which
authenticate with what they are given (a one-time pass, then a room session), not a login.

``POST /media/passes/redeem`` ``{"pass": "..."}`` -> ``{"room_id", "session", "expires_in"}``;
``POST /media/rooms/<room>/grant`` with ``Authorization: Pass <session>`` -> the grant
answer of ``/api/v1/media/rooms/{room}/grant``.
"""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from hub.errors import HubCode, HubError, Invalid, renders_errors

from .api import grant_body
from .errors import MediaCode, MediaError
from .passes import pass_access, pass_redeem


@csrf_exempt
@renders_errors
def redeem(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        raise HubError(HubCode.METHOD_NOT_ALLOWED)
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        raise Invalid("请求格式错误") from None
    raw = body.get("pass") if isinstance(body, dict) else None
    return JsonResponse(pass_redeem(str(raw or "")))


@csrf_exempt
@renders_errors
def pass_grant(request: HttpRequest, room_id: str) -> HttpResponse:
    if request.method != "POST":
        raise HubError(HubCode.METHOD_NOT_ALLOWED)
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("Pass "):
        raise MediaError(MediaCode.PASS_INVALID)
    access, sid = pass_access(auth[5:].strip(), room_id)
    return JsonResponse(grant_body(request, access, sid=sid))

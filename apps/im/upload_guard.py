"""An ASGI guard in front of Django for attachment uploads (issue 11, finding 16).

Django's ASGI handler reads the whole request body before any middleware or view
runs, so a 25 MB upload to a conversation one is not a member of was received in
full before the 403. This guard answers from the request line and headers alone:
no declared length -> 422, a length over the largest attachment -> 413, a signed-in
caller who is not a current member -> 403; the body is never read. A missing or
dead token passes through, so the API answers 401 as for every route."""

from __future__ import annotations

import json
import re
from typing import Any

from asgiref.sync import sync_to_async
from django.db import close_old_connections

from hub.errors import ApiError, Invalid, error_response
from hub.identity import identity

from .api import LIMITS
from .errors import ImCode, ImError
from .selectors import is_member

UPLOAD_PATH = re.compile(r"^/api/v1/im/conversations/(\d{1,18})/attachments/?$")
MAX_FILE = max(LIMITS.values())  # the largest attachment kind
MULTIPART_OVERHEAD = 64 * 1024


def _refusal(conversation_id: int, headers: dict[bytes, bytes]) -> ApiError | None:
    length = headers.get(b"content-length", b"")
    if not length.isdigit():
        return Invalid("上传请求缺少文件大小，请重新上传", field="file")
    if int(length) > MAX_FILE + MULTIPART_OVERHEAD:
        return ImError(ImCode.ATTACHMENT_TOO_LARGE, f"文件过大（上限{MAX_FILE // (1024 * 1024)}MB）", max=MAX_FILE)
    auth = headers.get(b"authorization", b"").decode("latin-1")
    if not auth.startswith("Bearer "):
        return None
    close_old_connections()
    try:
        live = identity().authenticate(auth[7:].strip())
        if live is None:
            return None
        if not is_member(live.user, conversation_id):
            return ImError(ImCode.NOT_MEMBER)
        return None
    finally:
        close_old_connections()


class UploadGuard:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("method") == "POST":
            match = UPLOAD_PATH.match(scope.get("path", ""))
            if match:
                headers = {k.lower(): v for k, v in scope.get("headers", [])}
                refusal = await sync_to_async(_refusal, thread_sensitive=True)(int(match.group(1)), headers)
                if refusal is not None:
                    await _send(send, refusal)
                    return
        await self.app(scope, receive, send)


async def _send(send: Any, exc: ApiError) -> None:
    response = error_response(exc)
    body = response.content if hasattr(response, "content") else json.dumps(exc.as_dict()).encode()
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": [
                (b"content-type", b"application/json"),
                (b"cache-control", b"no-store"),
                (b"x-content-type-options", b"nosniff"),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})

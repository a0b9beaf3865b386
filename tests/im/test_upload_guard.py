"""Uploads are refused on size and membership before their body is read (issue 11,
finding 16): the ASGI application answers without asking for one body chunk."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from apps.accounts.services import token_issue
from apps.im import services as im_services
from apps.im.models import Attachment
from hub.asgi import application
from tests.conftest import make_patient, make_staff

pytestmark = pytest.mark.django_db(transaction=True)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def _call(path: str, token: str, length: int, body: bytes = b"", content_type: str = "") -> tuple[int, Any, int]:
    """POST through the whole ASGI app; returns (status, json body, body chunks read)."""
    reads = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        if reads > 1:  # after the body Django only listens for a disconnect: none comes
            await asyncio.Event().wait()
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [
        (b"host", b"testserver"),
        (b"content-length", str(length).encode()),
        (b"authorization", f"Bearer {token}".encode()),
    ]
    if content_type:
        headers.append((b"content-type", content_type.encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    await application(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body_bytes = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body_bytes or b"{}"), reads


def _multipart(data: bytes) -> tuple[bytes, str]:
    boundary = "guardboundary"
    buf = io.BytesIO()
    buf.write(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'.encode())
    buf.write(b"Content-Type: image/png\r\n\r\n" + data + f"\r\n--{boundary}--\r\n".encode())
    return buf.getvalue(), f"multipart/form-data; boundary={boundary}"


async def test_too_large_or_not_a_member_is_refused_before_the_body_is_read() -> None:
    doctor = await sync_to_async(make_staff)("doctor", "guarddoc")
    account = await sync_to_async(make_patient)("13900000451", "守卫")
    stranger = await sync_to_async(make_patient)("13900000452", "路人")
    conv = await sync_to_async(im_services.conversation_for_pair)(staff=doctor.user, patient=account.user)
    member_token = (await sync_to_async(token_issue)(user=account.user)).raw
    stranger_token = (await sync_to_async(token_issue)(user=stranger.user)).raw
    path = f"/api/v1/im/conversations/{conv.pk}/attachments"

    status, body, reads = await _call(path, member_token, 25 * 1024 * 1024)
    assert (status, body["code"], reads) == (413, "im.attachment_too_large", 0)
    status, body, reads = await _call(path, stranger_token, 1024)
    assert (status, body["code"], reads) == (403, "im.not_member", 0)
    assert not await Attachment.objects.aexists()

    # A member's small upload goes through to the API as before.
    payload, content_type = _multipart(PNG)
    status, body, reads = await _call(path, member_token, len(payload), payload, content_type)
    assert status == 201 and body["kind"] == "image" and reads >= 1, body
    assert await Attachment.objects.acount() == 1

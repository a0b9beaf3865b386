"""Recording replay outside the JSON API: the MP4 with range requests, for a replay grant.

A replay grant carries the login session it was issued under (``sid``): once that
session has ended (logout, log out everywhere, an admin's revoke...) the URL
answers ``grant.revoked`` (403) and serves nothing, even before it expires."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.http import require_GET

from hub.crypto import grant_key
from hub.errors import HubCode, HubError, NotFound, renders_errors
from hub.identity import identity
from media_engine.grants import GrantError, verify_grant

from .models import Recording
from .storage import recording_file

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CHUNK = 64 * 1024


def _read(path: Path, start: int, length: int) -> Iterator[bytes]:
    with path.open("rb") as f:
        f.seek(start)
        while length > 0:
            chunk = f.read(min(_CHUNK, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk


@require_GET
@renders_errors
def recording_replay_file(request: HttpRequest, public_id: uuid.UUID) -> HttpResponseBase:
    """The MP4 of a recording, for a holder of an unexpired replay grant (URL ``grant``)."""
    token = request.GET.get("grant", "")
    try:
        grant = verify_grant(token, key=grant_key(), purpose="replay")
    except GrantError as exc:
        raise HubError.from_grant(exc.code, exc.message) from None
    sid = grant.get("sid")
    if grant.get("rec") != str(public_id) or not isinstance(sid, int) or isinstance(sid, bool):
        raise HubError(HubCode.GRANT_INVALID)
    if not identity().token_live(sid):  # a sync view: this read runs off the event loop
        raise HubError(HubCode.GRANT_REVOKED)
    recording = Recording.objects.filter(public_id=public_id).first()
    if recording is None:
        raise NotFound("录像")
    path = recording_file(recording)
    if not path.exists():
        raise HubError(HubCode.NOT_FOUND, "录像文件不存在")
    size = path.stat().st_size
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, no-store"}
    match = _RANGE.match(request.headers.get("Range", "").strip())
    if match is None:
        response: HttpResponseBase = FileResponse(path.open("rb"), content_type="video/mp4")
        for name, value in headers.items():
            response[name] = value
        return response
    first, last = match.groups()
    if first:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    elif last:
        start, end = max(size - int(last), 0), size - 1
    else:
        start, end = 0, size - 1
    if start >= size or start > end:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    length = end - start + 1
    response = StreamingHttpResponse(_read(path, start, length), status=206, content_type="video/mp4")
    response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Content-Length"] = str(length)
    for name, value in headers.items():
        response[name] = value
    return response

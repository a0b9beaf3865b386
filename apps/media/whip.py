"""WHIP (publish) and WHEP (play) endpoints, reaching the node that holds the room.

``POST`` an ``application/sdp`` offer with ``Authorization: Bearer <room grant>``
-> ``201`` with the SDP answer and a ``Location`` naming the session. The
offer goes to the room's node through the node command API
(:func:`control.node_call`: a direct call to the embedded node, the channel
layer to ``run_media_node``), so WHIP/WHEP, the socket, RTMP and FLV/HLS meet
in one room. The grant admits joining; the session it created is ended with
``DELETE`` of its ``Location`` (the unguessable session id is the capability,
as the WHIP resource URL is) for as long as it lives, whatever the grant's
expiry. aiortc has no trickle ICE (answers carry every candidate), so
``PATCH`` answers 405.
"""

from __future__ import annotations

import re

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from hub.errors import ApiError
from media_engine.grants import GrantError

from .control import node_call
from .grants import verify

SDP_MAX_BYTES = 32 * 1024
_SESSION = re.compile(r"^[\w-]{16,64}$")


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"code": code, "message": message, "detail": {}}, status=status)


def _grant(request: HttpRequest, room_id: str, action: str) -> dict[str, object] | JsonResponse:
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("Bearer "):
        return _error(401, "grant.missing", "缺少媒体授权凭证")
    try:
        grant = verify(auth[7:].strip(), purpose="room")
    except GrantError as exc:
        return _error(403, exc.code, exc.message)
    if grant.get("room") != room_id or not grant.get(action) or not grant.get("peer"):
        return _error(403, "grant.invalid", "授权凭证与房间或操作不符")
    return grant


async def _handle(request: HttpRequest, room_id: str, action: str) -> HttpResponse:
    if request.method == "OPTIONS":
        response = HttpResponse(status=204)
        response["Allow"] = "OPTIONS, POST"
        response["Accept-Post"] = "application/sdp"
        return response
    if request.method != "POST":
        return _error(405, "method_not_allowed", "不支持的请求方法")
    grant = _grant(request, room_id, action)
    if isinstance(grant, JsonResponse):
        return grant
    if request.content_type != "application/sdp":
        return _error(415, "media.bad_content_type", "请求内容须为 application/sdp")
    if len(request.body) > SDP_MAX_BYTES:
        return _error(413, "media.bad_offer", "SDP 过大")
    peer, sdp = str(grant["peer"]), request.body.decode(errors="replace")
    try:
        if action == "publish":
            result = await node_call("peer.publish", room_id, peer=peer, sdp=sdp)
        else:
            # The other side: never the player's own publication.
            result = await node_call("peer.play", room_id, peer=peer, sdp=sdp, wait_seconds=5.0)
    except ApiError as exc:
        status = 400 if exc.code == "media.bad_offer" else exc.status
        return _error(status, exc.code, exc.message)
    response = HttpResponse(result["sdp"], status=201, content_type="application/sdp")
    response["Location"] = f"/media/{'whip' if action == 'publish' else 'whep'}/{room_id}/{result['session']}"
    response["ETag"] = f'"{result["session"]}"'
    return response


@csrf_exempt
async def whip(request: HttpRequest, room_id: str) -> HttpResponse:
    return await _handle(request, room_id, "publish")


@csrf_exempt
async def whep(request: HttpRequest, room_id: str) -> HttpResponse:
    return await _handle(request, room_id, "subscribe")


@csrf_exempt
async def media_session(request: HttpRequest, room_id: str, session: str) -> HttpResponse:
    """DELETE ends the publication (WHIP) or the playback (WHEP) of this session only; a
    session already ended or replaced by a newer one of the same peer answers 200 too."""
    if request.method == "PATCH":
        return _error(405, "media.no_trickle", "不支持增量 ICE")
    if request.method != "DELETE":
        return _error(405, "method_not_allowed", "不支持的请求方法")
    if not _SESSION.match(session):
        return _error(404, "not_found", "会话不存在")
    try:
        await node_call("session.end", room_id, session=session)
    except ApiError as exc:
        return _error(exc.status, exc.code, exc.message)
    return HttpResponse(status=200)

"""WHIP (publish) and WHEP (play) endpoints on the embedded media node.

``POST`` an ``application/sdp`` offer with ``Authorization: Bearer <room grant>``
-> ``201`` with the SDP answer and a ``Location`` to ``DELETE``. aiortc has no
trickle ICE (answers carry every candidate), so ``PATCH`` answers 405.
"""

from __future__ import annotations

import uuid

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from media_engine import MediaError
from media_engine.grants import GrantError

from .embedded import engine
from .grants import verify


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
    if grant.get("room") != room_id or not grant.get(action):
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
    peer = str(grant.get("peer") or uuid.uuid4())
    room = engine().room(room_id)
    try:
        if action == "publish":
            answer = await room.publish(peer, request.body.decode())
        else:
            # The other side: never the player's own publication.
            publisher = await room.wait_publisher(timeout=5, exclude=peer)
            answer = await room.subscribe(peer, request.body.decode(), publisher_id=publisher.peer_id)
    except MediaError as exc:
        return _error(409 if exc.code != "media.bad_offer" else 400, exc.code, exc.message)
    response = HttpResponse(answer, status=201, content_type="application/sdp")
    response["Location"] = f"/media/{'whip' if action == 'publish' else 'whep'}/{room_id}/{peer}"
    response["ETag"] = f'"{peer}"'
    return response


@csrf_exempt
async def whip(request: HttpRequest, room_id: str) -> HttpResponse:
    return await _handle(request, room_id, "publish")


@csrf_exempt
async def whep(request: HttpRequest, room_id: str) -> HttpResponse:
    return await _handle(request, room_id, "subscribe")


@csrf_exempt
async def whip_session(request: HttpRequest, room_id: str, peer: str) -> HttpResponse:
    return await _session(request, room_id, peer, "publish")


@csrf_exempt
async def whep_session(request: HttpRequest, room_id: str, peer: str) -> HttpResponse:
    return await _session(request, room_id, peer, "subscribe")


async def _session(request: HttpRequest, room_id: str, peer: str, action: str) -> HttpResponse:
    """DELETE ends the publication (WHIP) or the playback (WHEP); PATCH (trickle ICE) is not supported by aiortc."""
    if request.method == "PATCH":
        return _error(405, "media.no_trickle", "不支持增量 ICE")
    if request.method != "DELETE":
        return _error(405, "method_not_allowed", "不支持的请求方法")
    grant = _grant(request, room_id, action)
    if isinstance(grant, JsonResponse):
        return grant
    if grant.get("peer") != peer:
        return _error(403, "grant.invalid", "授权凭证与会话不符")
    room = engine().room(room_id)
    await (room.unpublish(peer) if action == "publish" else room.unsubscribe(peer))
    return HttpResponse(status=200)

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

A grant carries the login session it was issued under (``sid``): once that
session has ended (logout) the grant is refused with ``grant.revoked`` (403),
checked off the event loop, and the node is told the sid (``peer.publish`` /
``peer.play``) so the session's logout ends this publication or playback.
"""

from __future__ import annotations

import re
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from hub.errors import HubCode, HubError, renders_errors
from hub.realtime.db import run_db
from media_engine.grants import GrantError

from .control import node_call
from .errors import MediaCode, MediaError
from .grants import grant_issued, grant_sid, session_live, verify

SDP_MAX_BYTES = 32 * 1024
_SESSION = re.compile(r"^[\w-]{16,64}$")


def _grant(request: HttpRequest, room_id: str, action: str) -> dict[str, Any]:
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("Bearer "):
        raise HubError(HubCode.GRANT_MISSING)
    try:
        grant = verify(auth[7:].strip(), purpose="room")
    except GrantError as exc:
        raise HubError.from_grant(exc.code, exc.message) from None
    if grant.get("room") != room_id or not grant.get(action) or not grant.get("peer"):
        raise HubError(HubCode.GRANT_INVALID, "授权凭证与房间或操作不符")
    return grant


@renders_errors
async def _handle(request: HttpRequest, room_id: str, action: str) -> HttpResponse:
    if request.method == "OPTIONS":
        response = HttpResponse(status=204)
        response["Allow"] = "OPTIONS, POST"
        response["Accept-Post"] = "application/sdp"
        return response
    if request.method != "POST":
        raise HubError(HubCode.METHOD_NOT_ALLOWED)
    grant = _grant(request, room_id, action)
    if not await run_db(session_live, grant):
        raise HubError(HubCode.GRANT_REVOKED)
    if request.content_type != "application/sdp":
        raise MediaError(MediaCode.BAD_CONTENT_TYPE)
    if len(request.body) > SDP_MAX_BYTES:
        raise MediaError(MediaCode.BAD_OFFER, "SDP 过大").answered_with(413)
    peer, sdp, sid = str(grant["peer"]), request.body.decode(errors="replace"), grant_sid(grant)
    # The node refuses a grant issued before the peer was removed from the room (peer.kick).
    issued = grant_issued(grant)
    try:
        if action == "publish":
            result = await node_call("peer.publish", room_id, peer=peer, sdp=sdp, sid=sid, issued=issued)
        else:
            # The other side: never the player's own publication.
            result = await node_call("peer.play", room_id, peer=peer, sdp=sdp, wait_seconds=5.0, sid=sid, issued=issued)
    except MediaError as exc:
        # WHIP (RFC 9725): an offer the server cannot take is a 400.
        if exc.code == MediaCode.BAD_OFFER:
            exc.answered_with(400)
        if exc.code == HubCode.GRANT_REVOKED:  # the logout reached the node first
            raise HubError(HubCode.GRANT_REVOKED) from None
        raise
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
@renders_errors
async def media_session(request: HttpRequest, room_id: str, session: str) -> HttpResponse:
    """DELETE ends the publication (WHIP) or the playback (WHEP) of this session only; a
    session already ended or replaced by a newer one of the same peer answers 200 too."""
    if request.method == "PATCH":
        raise MediaError(MediaCode.NO_TRICKLE)
    if request.method != "DELETE":
        raise HubError(HubCode.METHOD_NOT_ALLOWED)
    if not _SESSION.match(session):
        raise HubError(HubCode.NOT_FOUND, "会话不存在")
    await node_call("session.end", room_id, session=session)
    return HttpResponse(status=200)

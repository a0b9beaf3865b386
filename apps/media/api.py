"""Room grants and recording control for consultation rooms (``/api/v1/media/``).

A room is an IM conversation's video room: ``conv-<conversation id>``. Only
active members of the conversation get a grant for it; observers only play.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from ninja import Router, Schema

from apps.im.errors import ImCode
from apps.im.models import Member
from hub.errors import HubCode, errors

from . import embedded
from .access import RoomAccess, room_access, room_member
from .errors import MediaCode
from .grants import room_grant
from .passes import pass_issue
from .recording import recording_start_sync, recording_stop_sync

router = Router()


class GrantOut(Schema):
    room_id: str
    peer_id: str
    token: str
    publish: bool
    subscribe: bool
    expires_in: int
    whip_url: str
    whep_url: str
    rtmp_url: str
    flv_url: str
    hls_url: str


class RecordingStateOut(Schema):
    public_id: str
    room_id: str
    status: str
    duration_seconds: float


def _member(request: HttpRequest, room_id: str) -> Member:
    return room_member(request.auth, room_id)  # type: ignore[attr-defined]


def _node_bases(request: HttpRequest) -> tuple[str, str]:
    """Where clients reach the room node's RTMP and HTTP-FLV/HLS ports ("" when off)."""
    rtmp, live = settings.MEDIA_PUBLIC_RTMP_URL, settings.MEDIA_PUBLIC_LIVE_URL
    if settings.MEDIA_EMBEDDED and not (rtmp and live):
        host = request.get_host()
        host = host if host.startswith("[") else host.split(":")[0]
        rtmp_port, http_port = embedded.ports()
        rtmp = rtmp or (f"rtmp://{host}:{rtmp_port}" if rtmp_port else "")
        live = live or (f"{request.scheme}://{host}:{http_port}" if http_port else "")
    return rtmp.rstrip("/"), live.rstrip("/")


@router.post(
    "/rooms/{room_id}/grant",
    response={200: GrantOut, **errors(HubCode.NOT_FOUND, ImCode.NOT_MEMBER, ImCode.CONVERSATION_CLOSED)},
    summary="获取视频房间授权",
    description="会话已结束（限时问诊到时）时拒绝：`im.conversation_closed`（409）。",
)
def media_room_grant(request: HttpRequest, room_id: str) -> dict[str, Any]:
    access = room_access(request.auth, room_id)  # type: ignore[attr-defined]
    return grant_body(request, access, sid=request.auth_token.pk)  # type: ignore[attr-defined]


def grant_body(request: HttpRequest, access: RoomAccess, *, sid: int) -> dict[str, Any]:
    """The grant answer (:class:`GrantOut`) for an access decided just now, under login session ``sid``."""
    room_id = access.room_id
    # The grant carries this login session (sid): refused by the hub and the node once it ends.
    token = room_grant(
        room_id=room_id,
        peer_id=access.peer_id,
        role=access.role,
        publish=access.publish,
        subscribe=access.subscribe,
        sid=sid,
    )
    rtmp, live = _node_bases(request)
    return {
        "room_id": room_id,
        "peer_id": access.peer_id,
        "token": token,
        "publish": access.publish,
        "subscribe": access.subscribe,
        "expires_in": settings.MEDIA_GRANT_TTL_SECONDS,
        "whip_url": f"/media/whip/{room_id}",
        "whep_url": f"/media/whep/{room_id}",
        # Mini-programs: live-pusher (RTMP) and live-player (HTTP-FLV; add ``&other=1`` to
        # play only the other side); HLS for the rest.
        "rtmp_url": f"{rtmp}/live/{room_id}?grant={token}" if rtmp and access.publish else "",
        "flv_url": f"{live}/live/{room_id}.flv?grant={token}" if live else "",
        "hls_url": f"{live}/hls/{room_id}/index.m3u8?grant={token}" if live else "",
    }


class RoomPassOut(Schema):
    room_id: str
    pass_code: str
    expires_in: int
    page: str


@router.post(
    "/rooms/{room_id}/pass",
    response={200: RoomPassOut, **errors(HubCode.NOT_FOUND, ImCode.NOT_MEMBER, ImCode.CONVERSATION_CLOSED)},
    summary="获取网页视频一次性入口",
    description="支付宝小程序以 web-view 打开 H5 视频页时使用：一次性、60 秒内有效，仅限本房间。",
)
def media_room_pass(request: HttpRequest, room_id: str) -> dict[str, Any]:
    code = pass_issue(user=request.auth, sid=request.auth_token.pk, room_id=room_id)  # type: ignore[attr-defined]
    return {
        "room_id": room_id,
        "pass_code": code,
        "expires_in": settings.MEDIA_PASS_TTL_SECONDS,
        "page": f"/h5/#/pages/video/room?room={room_id}&pass={code}",
    }


@router.post(
    "/rooms/{room_id}/recording/start",
    response={
        200: RecordingStateOut,
        **errors(
            HubCode.NOT_FOUND,
            HubCode.FORBIDDEN,
            ImCode.NOT_MEMBER,
            MediaCode.ALREADY_RECORDING,
            MediaCode.RECORDING_CONSENT_MISSING,
            MediaCode.NO_PUBLISHER,
            MediaCode.NODE_UNAVAILABLE,
        ),
    },
    summary="开始录制",
    description="须会话中每位患者当前已同意音视频录制（`media.recording_consent_missing`，409）。",
)
def media_recording_start(request: HttpRequest, room_id: str) -> dict[str, Any]:
    return recording_start_sync(request.auth, room_id)  # type: ignore[attr-defined]


@router.post(
    "/rooms/{room_id}/recording/stop",
    response={
        200: RecordingStateOut,
        **errors(
            HubCode.NOT_FOUND,
            HubCode.FORBIDDEN,
            ImCode.NOT_MEMBER,
            MediaCode.NOT_RECORDING,
            MediaCode.RECORDING_EMPTY,
            MediaCode.NODE_UNAVAILABLE,
        ),
    },
    summary="停止录制",
)
def media_recording_stop(request: HttpRequest, room_id: str) -> dict[str, Any]:
    return recording_stop_sync(request.auth, room_id)  # type: ignore[attr-defined]

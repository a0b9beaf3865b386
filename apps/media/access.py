"""Who may enter a consultation video room, shared by every way in.

A room is an IM conversation's video room: ``conv-<conversation id>``. Only
active members of the conversation may enter, and only while it is open (a closed
conversation's room is over: ``im.conversation_closed``); observers only play. The grant
endpoint (``/api/v1/media/rooms/{room}/grant``, then WHIP/WHEP) and the hub
socket's ``media.*`` frames both decide here, and both audit the decision as
``media.room_grant``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from apps.audit.services import audit_record
from apps.im.errors import ImCode, ImError
from apps.im.models import Conversation, Member
from apps.im.services import require_member
from hub.errors import NotFound

ROOM = re.compile(r"^conv-(\d{1,18})$")


@dataclass(frozen=True)
class RoomAccess:
    room_id: str
    peer_id: str
    role: str
    publish: bool
    subscribe: bool


def room_member(user: Any, room_id: str) -> Member:
    """The user's active membership of the conversation behind ``room_id`` (404 / 403 ``im.not_member``)."""
    match = ROOM.match(room_id)
    if match is None:
        raise NotFound("视频房间")
    return require_member(user=user, conversation_id=int(match.group(1)))


def refuse_closed(member: Member) -> None:
    """A closed conversation (its timed session ended, ``Conversation.closed_at``) has no
    video room any more: ``im.conversation_closed`` (409), nothing written."""
    if Conversation.objects.filter(pk=member.conversation_id, closed_at__isnull=False).exists():
        raise ImError(ImCode.CONVERSATION_CLOSED, "会话已结束，视频已关闭")


def room_access(user: Any, room_id: str, *, via: str = "") -> RoomAccess:
    """What ``user`` may do in ``room_id``; refused as :func:`room_member`, and for a closed
    conversation (:func:`refuse_closed`). Audited when granted."""
    member = room_member(user, room_id)
    refuse_closed(member)
    access = RoomAccess(
        room_id=room_id,
        peer_id=f"u{user.pk}",
        role=user.role,
        publish=member.role != Member.Role.OBSERVER,
        subscribe=True,
    )
    audit_record(
        action="media.room_grant",
        actor=user,
        object_type="room",
        object_id=room_id,
        detail={"via": via} if via else None,
    )
    return access

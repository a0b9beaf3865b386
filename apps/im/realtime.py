"""IM frames on the hub socket: send, sync, receipts, typing, recall."""

from __future__ import annotations

import time
from typing import Any

from hub.errors import ApiError, Invalid
from hub.realtime import fields
from hub.realtime.batching import GroupCommit
from hub.realtime.db import run_db
from hub.realtime.handlers import register_handler
from hub.realtime.node import node
from hub.realtime.sessions import event_frame

from . import selectors, services
from .errors import ImCode, ImError
from .models import Message

TYPING_INTERVAL = 2.0


def _conversation_id(frame: dict[str, Any]) -> int:
    return fields.positive_id(frame, "conversation", "会话编号")


def _int(frame: dict[str, Any], key: str, default: int | None = None) -> int:
    return fields.count(frame, key, default=default)


# How long a socket trusts a membership it verified, as a backstop for a lost
# ``topic.revoke`` (the cross-process path is at-most-once).
MEMBER_RECHECK_SECONDS = 60.0


async def _member_check(socket: Any, cid: int) -> None:
    """Membership, remembered per socket for a while once verified. Removal
    (``topic.revoke`` of ``conv:<id>``) forgets it at once (``socket.grants``)."""
    grants: dict[str, float] = socket.__dict__.setdefault("grants", {})
    topic = services.topic_for(cid)
    now = time.monotonic()
    if now - grants.get(topic, -MEMBER_RECHECK_SECONDS) < MEMBER_RECHECK_SECONDS:
        return
    epoch = getattr(socket, "revocations", 0)
    if not await run_db(selectors.is_member, socket.user, cid):
        grants.pop(topic, None)
        raise ImError(ImCode.NOT_MEMBER)
    # A revocation that arrived while the query ran may predate its answer: do not cache.
    if getattr(socket, "revocations", 0) == epoch:
        grants[topic] = now


def _send_request(socket: Any, frame: dict[str, Any]) -> services.SendRequest:
    """Every field checked before the send joins a batch: a malformed frame is
    answered alone (``validation_error``) and never reaches the others."""
    cid = _conversation_id(frame)
    client_msg_id = fields.text(frame, "client_msg_id", "client_msg_id ", max_len=64)
    kind = frame.get("kind", "text")
    if type(kind) is not str:
        raise Invalid("消息类型格式错误", field="kind")
    if kind not in services.CLIENT_KINDS:
        raise ImError(ImCode.KIND_FORBIDDEN)
    body = fields.obj(frame, "body", "消息内容")
    if kind == Message.Kind.TEXT:
        text = body.get("text")
        if type(text) is not str or not text.strip():
            raise Invalid("消息内容不能为空", field="body.text")
        if len(text) > services.TEXT_MAX:
            raise ImError(ImCode.TOO_LONG, f"消息不能超过{services.TEXT_MAX}字")
    else:
        fields.positive_id(body, "attachment", "附件编号")
    return services.SendRequest(
        conversation_id=cid, sender=socket.user, kind=kind, body=body, client_msg_id=client_msg_id
    )


_sends: GroupCommit[services.SendRequest, services.SendResult | ApiError] | None = None


def sends() -> GroupCommit[services.SendRequest, services.SendResult | ApiError]:
    global _sends
    if _sends is None:
        _sends = GroupCommit(services.message_send_batch, max_batch=64, max_inflight=4)
    return _sends


async def on_send(socket: Any, frame: dict[str, Any]) -> dict[str, Any]:
    request = _send_request(socket, frame)
    cid = request.conversation_id
    result = await sends().submit(request)
    if isinstance(result, ApiError):
        raise result
    message = result.message
    if not result.duplicate:
        topic = services.topic_for(cid)
        # The sending socket has its ack; its user's other sockets get the event.
        hub = node()
        await hub.publish(topic, event_frame(topic, "im.message", message), exclude=socket)
        # Members' own topics, so conversation lists update without watching every conversation.
        for user_id in result.notify:
            user_topic = f"user:{user_id}"
            await hub.publish(user_topic, event_frame(user_topic, "im.notify", message))
    return {
        "conversation": cid,
        "seq": message["seq"],
        "client_msg_id": message["client_msg_id"],
        "created_at": message["created_at"],
        "duplicate": result.duplicate,
    }


async def on_sync(socket: Any, frame: dict[str, Any]) -> dict[str, Any]:
    cid = _conversation_id(frame)
    await _member_check(socket, cid)
    return await run_db(
        selectors.messages_after,
        conversation_id=cid,
        after_seq=_int(frame, "after_seq", 0),
        limit=fields.count(frame, "limit", default=100, low=1, high=selectors.PAGE_MAX),
    )


async def on_read(socket: Any, frame: dict[str, Any]) -> dict[str, Any]:
    cid = _conversation_id(frame)
    return await run_db(services.receipt_update, user=socket.user, conversation_id=cid, read_seq=_int(frame, "seq"))


async def on_delivered(socket: Any, frame: dict[str, Any]) -> dict[str, Any]:
    cid = _conversation_id(frame)
    return await run_db(
        services.receipt_update, user=socket.user, conversation_id=cid, delivered_seq=_int(frame, "seq")
    )


async def on_typing(socket: Any, frame: dict[str, Any]) -> None:
    """Ephemeral: never stored, throttled, dropped first."""
    cid = _conversation_id(frame)
    await _member_check(socket, cid)
    last: dict[int, float] = socket.__dict__.setdefault("im_typing", {})
    now = time.monotonic()
    if now - last.get(cid, 0.0) < TYPING_INTERVAL:
        return None
    last[cid] = now
    topic = services.topic_for(cid)
    await node().publish(
        topic, event_frame(topic, "im.typing", {"conversation": cid, "user": socket.user.pk}), exclude=socket
    )
    return None


SIGNAL_MAX_BYTES = 2048


async def on_signal(socket: Any, frame: dict[str, Any]) -> None:
    """An ephemeral room signal (e.g. "ringing", "writing a prescription",
    timer state): authorised per send, fanned out, never stored."""
    cid = _conversation_id(frame)
    data = fields.obj(frame, "data", "信号内容")
    await _member_check(socket, cid)
    topic = services.topic_for(cid)
    text = event_frame(topic, "im.signal", {"conversation": cid, "user": socket.user.pk, "data": data})
    if len(text) > SIGNAL_MAX_BYTES:
        raise ImError(ImCode.SIGNAL_TOO_LARGE)
    await node().publish(topic, text, exclude=socket)
    return None


async def on_recall(socket: Any, frame: dict[str, Any]) -> dict[str, Any]:
    cid = _conversation_id(frame)
    seq = fields.count(frame, "seq", low=1)
    return await run_db(services.message_recall, user=socket.user, conversation_id=cid, seq=seq)


register_handler("im.send", on_send)
register_handler("im.sync", on_sync)
register_handler("im.read", on_read)
register_handler("im.delivered", on_delivered)
register_handler("im.typing", on_typing)
register_handler("im.recall", on_recall)
register_handler("im.signal", on_signal)

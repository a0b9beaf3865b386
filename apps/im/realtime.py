"""IM frames on the hub socket: send, sync, receipts, typing, recall."""

from __future__ import annotations

import time
from typing import Any

from hub.errors import ApiError, Invalid
from hub.realtime.batching import GroupCommit
from hub.realtime.db import run_db
from hub.realtime.handlers import register_handler
from hub.realtime.node import node
from hub.realtime.sessions import event_frame

from . import selectors, services
from .errors import ImCode, ImError

TYPING_INTERVAL = 2.0


def _conversation_id(frame: dict[str, Any]) -> int:
    cid = frame.get("conversation")
    if not isinstance(cid, int) or cid <= 0:
        raise Invalid("缺少会话编号")
    return cid


def _int(frame: dict[str, Any], key: str, default: int | None = None) -> int:
    value = frame.get(key, default)
    if not isinstance(value, int) or value < 0:
        raise Invalid(f"{key} 格式错误")
    return value


async def _member_check(socket: Any, cid: int) -> None:
    """Membership, remembered per socket once verified (membership only ends by
    leaving, which also ends the subscription on the client's next resync)."""
    known: set[int] = socket.__dict__.setdefault("im_conversations", set())
    if cid in known:
        return
    if not await run_db(selectors.is_member, socket.user, cid):
        raise ImError(ImCode.NOT_MEMBER)
    known.add(cid)


_sends: GroupCommit[services.SendRequest, services.SendResult | ApiError] | None = None


def sends() -> GroupCommit[services.SendRequest, services.SendResult | ApiError]:
    global _sends
    if _sends is None:
        _sends = GroupCommit(services.message_send_batch, max_batch=64, max_inflight=4)
    return _sends


async def on_send(socket: Any, frame: dict[str, Any]) -> dict[str, Any]:
    cid = _conversation_id(frame)
    result = await sends().submit(
        services.SendRequest(
            conversation_id=cid,
            sender=socket.user,
            kind=frame.get("kind", "text"),
            body=frame.get("body"),
            client_msg_id=frame.get("client_msg_id"),
        )
    )
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
        limit=_int(frame, "limit", 100),
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
    data = frame.get("data")
    if not isinstance(data, dict):
        raise Invalid("信号内容格式错误")
    await _member_check(socket, cid)
    topic = services.topic_for(cid)
    text = event_frame(topic, "im.signal", {"conversation": cid, "user": socket.user.pk, "data": data})
    if len(text) > SIGNAL_MAX_BYTES:
        raise ImError(ImCode.SIGNAL_TOO_LARGE)
    await node().publish(topic, text, exclude=socket)
    return None


async def on_recall(socket: Any, frame: dict[str, Any]) -> dict[str, Any]:
    cid = _conversation_id(frame)
    return await run_db(services.message_recall, user=socket.user, conversation_id=cid, seq=_int(frame, "seq"))


register_handler("im.send", on_send)
register_handler("im.sync", on_sync)
register_handler("im.read", on_read)
register_handler("im.delivered", on_delivered)
register_handler("im.typing", on_typing)
register_handler("im.recall", on_recall)
register_handler("im.signal", on_signal)

"""Publishing to sockets from services: always after the transaction commits."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from . import protocol
from .node import node

log = logging.getLogger(__name__)


def end_sessions_on_commit(*, user_id: int | None = None, token_id: int | None = None, reason: str) -> None:
    """Close the open sockets of a user (or of one token) once the revocation is durable."""
    text = protocol.encode({"type": protocol.CONTROL_SESSION_END, "reason": reason})
    if user_id is not None:
        transaction.on_commit(lambda: node().publish_from_thread(protocol.control_topic_user(user_id), text))
    if token_id is not None:
        transaction.on_commit(lambda: node().publish_from_thread(protocol.control_topic_token(token_id), text))


def revoke_topic_on_commit(*, user_id: int, topic: str, reason: str) -> None:
    """Once the change is durable, drop ``topic`` from the user's open sockets (every
    process): its events stop at once, the socket and its other topics stay."""
    text = protocol.encode({"type": protocol.CONTROL_TOPIC_REVOKE, "topic": topic, "reason": reason})
    transaction.on_commit(lambda: node().publish_from_thread(protocol.control_topic_user(user_id), text))


def event_frame(topic: str, event: str, data: dict[str, Any]) -> str:
    return protocol.encode({"type": "event", "topic": topic, "event": event, "data": data})


def publish_on_commit(topic: str, event: str, data: dict[str, Any]) -> None:
    """Push a small event (ids and summaries, never bulky records) to a topic's
    subscribers once the transaction that produced it has committed."""
    text = event_frame(topic, event, data)
    transaction.on_commit(lambda: node().publish_from_thread(topic, text))

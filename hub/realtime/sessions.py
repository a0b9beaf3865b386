"""Publishing to sockets from services: always after the transaction commits."""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from .protocol import group_for_token, group_for_topic, group_for_user

log = logging.getLogger(__name__)


def _send(group: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception:
        # The layer is a hint, not the store: a lost push is recovered by the
        # client's resync, a lost session end by the socket's periodic recheck.
        log.exception("channel layer send to %s failed", group)


def end_sessions_on_commit(*, user_id: int | None = None, token_id: int | None = None, reason: str) -> None:
    """Close the open sockets of a user (or of one token) once the revocation is durable."""
    message = {"type": "session.end", "reason": reason}
    if user_id is not None:
        transaction.on_commit(lambda: _send(group_for_user(user_id), message))
    if token_id is not None:
        transaction.on_commit(lambda: _send(group_for_token(token_id), message))


def publish_on_commit(topic: str, event: str, data: dict[str, Any]) -> None:
    """Push a small event (ids and summaries, never bulky records) to a topic's subscribers."""
    message = {"type": "hub.event", "topic": topic, "event": event, "data": data}
    transaction.on_commit(lambda: _send(group_for_topic(topic), message))

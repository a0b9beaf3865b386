"""Real-time events of commerce: ``order.updated`` to the payer's ``user:<id>``
topic after commit (docs/realtime-protocol.md). Ids and a short summary only;
the client fetches the order for details."""

from __future__ import annotations

from typing import Any

from apps.core.lifecycle import Publication
from hub.realtime.sessions import publish_on_commit

from .models import Order
from .money import yuan


def user_topic(user_id: int) -> str:
    return f"user:{user_id}"


def order_payload(order: Order) -> dict[str, Any]:
    return {
        "order_no": order.order_no,
        "status": order.status,
        "status_label": Order.Status(order.status).label,
        "paid_fen": order.paid_fen,
        "refunded_fen": order.refunded_fen,
        "payable_yuan": yuan(order.payable_fen),
    }


def order_updated(order: Order) -> Publication:
    return (user_topic(order.payer_id), "order.updated", order_payload(order))


def publish(pub: Publication) -> None:
    topic, event, data = pub
    publish_on_commit(topic, event, data)

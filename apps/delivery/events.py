"""Real-time events of the delivery domain, published after commit.

``shipment.updated`` goes to the patient account's ``user:<id>`` topic on every
status change and every new courier event; it carries ids, codes, the Chinese
status label and the latest courier event, never the recipient (the client
fetches the shipment for anything else). Frame: docs/realtime-protocol.md."""

from __future__ import annotations

from typing import Any

from hub.realtime.sessions import publish_on_commit

from .models import Shipment, ShipmentEvent

EVENT = "shipment.updated"


def event_row(event: ShipmentEvent) -> dict[str, Any]:
    return {
        "id": event.pk,
        "status": event.status,
        "status_label": Shipment.Status(event.status).label if event.status else "",
        "description": event.description,
        "location": event.location,
        "occurred_at": event.occurred_at.isoformat(),
    }


def shipment_payload(shipment: Shipment, latest: ShipmentEvent | None = None) -> dict[str, Any]:
    return {
        "shipment_id": shipment.pk,
        "number": shipment.number,
        "source_kind": shipment.source_kind,
        "source_id": shipment.source_id,
        "method": shipment.method,
        "courier": shipment.courier,
        "waybill_no": shipment.waybill_no,
        "status": shipment.status,
        "status_label": Shipment.Status(shipment.status).label,
        "event": event_row(latest) if latest is not None else None,
    }


def publish_shipment(shipment: Shipment, latest: ShipmentEvent | None = None) -> None:
    publish_on_commit(f"user:{shipment.owner_id}", EVENT, shipment_payload(shipment, latest))

"""The shipment lifecycle: (current status, action) -> next status. Anything
not listed is refused by apps.core.lifecycle.transition.

Courier events never move a shipment backwards: ``RANK`` orders the courier
statuses, an event whose status ranks at or below the current one is stored
and changes nothing, and a jump forward (Dada reports 配送中 right after 待取货)
walks the table one action at a time (``path_to``), so every step is a real
row of this table with its own event row."""

from __future__ import annotations

from collections import deque

from .models import Shipment

S = Shipment.Status
SHIPMENT_TRANSITIONS: dict[tuple[str, str], str] = {
    # courier
    (S.CREATED, "book"): S.BOOKED,
    (S.BOOKED, "accept"): S.ACCEPTED,
    (S.ACCEPTED, "pick_up"): S.PICKED_UP,
    (S.PICKED_UP, "transit"): S.IN_TRANSIT,
    (S.IN_TRANSIT, "deliver"): S.DELIVERED,
    (S.PICKED_UP, "fail"): S.FAILED,
    (S.IN_TRANSIT, "fail"): S.FAILED,
    (S.FAILED, "redeliver"): S.IN_TRANSIT,  # the courier tries again
    (S.FAILED, "return"): S.RETURNED,
    # pickup at the hospital pharmacy
    (S.CREATED, "ready"): S.READY_FOR_PICKUP,
    (S.READY_FOR_PICKUP, "collect"): S.PICKED_UP_BY_PATIENT,
    # cancelled before the parcel left the hospital
    (S.CREATED, "cancel"): S.CANCELLED,
    (S.BOOKED, "cancel"): S.CANCELLED,
    (S.ACCEPTED, "cancel"): S.CANCELLED,
    (S.READY_FOR_PICKUP, "cancel"): S.CANCELLED,
    # staff: the parcel is lost or stuck (a reason is required)
    (S.BOOKED, "mark_failed"): S.FAILED,
    (S.ACCEPTED, "mark_failed"): S.FAILED,
    (S.PICKED_UP, "mark_failed"): S.FAILED,
    (S.IN_TRANSIT, "mark_failed"): S.FAILED,
}

# Actions a courier event may take (never cancel, book or a staff action).
COURIER_ACTIONS = ("accept", "pick_up", "transit", "deliver", "fail", "redeliver", "return")
STAFF_ACTIONS = ("book", "ready", "collect", "cancel", "mark_failed")
PATIENT_ACTIONS: tuple[str, ...] = ()

# Order of courier progress; an event at or below the current rank is history only.
RANK: dict[str, int] = {
    S.CREATED: 0,
    S.BOOKED: 1,
    S.ACCEPTED: 2,
    S.PICKED_UP: 3,
    S.IN_TRANSIT: 4,
    S.FAILED: 5,
    S.DELIVERED: 6,
    S.RETURNED: 7,
}

TERMINAL = frozenset({S.DELIVERED, S.RETURNED, S.PICKED_UP_BY_PATIENT, S.CANCELLED})


def path_to(current: str, target: str) -> list[str]:
    """The shortest list of courier actions leading from ``current`` to ``target``
    ([] when none, or when ``target`` is not ahead of ``current``)."""
    if current in TERMINAL or current not in RANK or target not in RANK or RANK[target] <= RANK[current]:
        return []
    seen = {current}
    queue: deque[tuple[str, list[str]]] = deque([(current, [])])
    while queue:
        status, actions = queue.popleft()
        for (frm, action), to in SHIPMENT_TRANSITIONS.items():
            if frm != status or action not in COURIER_ACTIONS or to in seen:
                continue
            if to == target:
                return [*actions, action]
            seen.add(to)
            queue.append((to, [*actions, action]))
    return []

"""Transition tables: (current status, action) -> next status. Anything not
listed is refused by the transition service."""

from __future__ import annotations

from .models import Alert, Assignment

A = Assignment.Status
ASSIGNMENT_TRANSITIONS: dict[tuple[str, str], str] = {
    (A.ASSIGNED, "answer"): A.IN_PROGRESS,
    (A.IN_PROGRESS, "answer"): A.IN_PROGRESS,
    (A.ASSIGNED, "submit"): A.SUBMITTED,  # a client may send every answer with the submit
    (A.IN_PROGRESS, "submit"): A.SUBMITTED,
    (A.ASSIGNED, "cancel"): A.CANCELLED,
    (A.IN_PROGRESS, "cancel"): A.CANCELLED,
}

L = Alert.Status
ALERT_TRANSITIONS: dict[tuple[str, str], str] = {
    (L.OPEN, "escalate"): L.ESCALATED,
    (L.OPEN, "acknowledge"): L.ACKNOWLEDGED,
    (L.ESCALATED, "acknowledge"): L.ACKNOWLEDGED,
    (L.ACKNOWLEDGED, "close"): L.CLOSED,
}

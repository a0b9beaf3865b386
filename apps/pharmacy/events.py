"""Real-time events of the pharmacy domain (to ``user:<id>`` topics, after commit).

``prescription.updated`` carries ids, the status and the version only (never a
diagnosis or a drug name); clients fetch the prescription to show it."""

from __future__ import annotations

from typing import Any

from apps.core.lifecycle import Publication
from hub.realtime.sessions import publish_on_commit
from hub.realtime.topics import InvalidTopic

from .models import Prescription

EVENT = "prescription.updated"
# The patient is told from signing on (a draft is the doctor's work in progress).
HIDDEN_FROM_PATIENT = frozenset({Prescription.Status.DRAFT})
# The pharmacists' review queue: one topic for every pharmacist, told when a
# prescription enters or leaves the queue (submitted, decided, cancelled, expired).
REVIEW_TOPIC = "pharmacy_review:queue"
QUEUE_ACTIONS = frozenset({"submit", "approve", "reject", "cancel", "expire"})


def review_topic_authorize(user: Any, ident: str) -> bool:
    from apps.accounts.roles import Role

    if ident != "queue":
        raise InvalidTopic(ident)
    return bool(getattr(user, "is_active", False) and user.role == Role.PHARMACIST)


def user_topic(user_id: int) -> str:
    return f"user:{user_id}"


def payload(p: Prescription, action: str) -> dict[str, Any]:
    return {
        "prescription_id": p.pk,
        "patient_id": p.patient_id,
        "status": p.status,
        "status_label": Prescription.Status(p.status).label,
        "version": p.version,
        "action": action,
    }


def publications(action: str) -> Any:
    """``publish`` for lifecycle.transition: to the doctor and the patient's account."""

    def build(p: Prescription) -> list[Publication]:
        data = payload(p, action)
        out: list[Publication] = [(user_topic(p.doctor_id), EVENT, data)]
        if p.status not in HIDDEN_FROM_PATIENT:
            out.append((user_topic(p.patient.owner_id), EVENT, data))
        if action in QUEUE_ACTIONS:
            out.append((REVIEW_TOPIC, EVENT, data))
        return out

    return build


def publish_created(p: Prescription) -> None:
    """A new draft: the doctor's other screens only (the patient sees it once signed)."""
    publish_on_commit(user_topic(p.doctor_id), EVENT, payload(p, "create"))

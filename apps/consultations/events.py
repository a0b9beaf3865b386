"""Real-time events of consultations (after commit).

- ``visit:<public_id>``: the visit's booking account, its doctor, and participants
  who joined (an invitation of the visit in status joined). Events
  ``visit.updated`` ``{visit}``, ``visit.queue`` (see ``queue.py``) and
  ``visit.called`` ``{visit_id, room_id, conversation_id}``.
- ``consult_queue:<doctor profile id>``: that doctor; ``consult_dept:<code>``: the
  doctors of the department. ``consult.queue_changed`` counts."""

from __future__ import annotations

import re
from typing import Any

from apps.accounts.roles import Role
from apps.core.lifecycle import Publication
from hub.realtime.topics import InvalidTopic, numeric_ident

from .models import DoctorProfile, Invitation, Visit
from .queue import visit_topic

UPDATED = "visit.updated"
CALLED = "visit.called"
_PUBLIC_ID = re.compile(r"^[0-9a-f]{16}$")
_CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def visit_topic_authorize(user: Any, ident: str) -> bool:
    if not _PUBLIC_ID.match(ident):
        raise InvalidTopic(ident)
    if not getattr(user, "is_active", False):
        return False
    visit = Visit.objects.select_related("doctor").filter(public_id=ident).first()
    if visit is None:
        return False
    if visit.account_id == user.pk or (visit.doctor is not None and visit.doctor.user_id == user.pk):
        return True
    return Invitation.objects.filter(visit=visit, invitee=user, status=Invitation.Status.JOINED).exists()


def doctor_queue_authorize(user: Any, ident: str) -> bool:
    pk = numeric_ident(ident)
    return bool(
        getattr(user, "is_active", False)
        and user.role == Role.DOCTOR
        and DoctorProfile.objects.filter(pk=pk, user=user).exists()
    )


def department_queue_authorize(user: Any, ident: str) -> bool:
    if not _CODE.match(ident):
        raise InvalidTopic(ident)
    return bool(
        getattr(user, "is_active", False)
        and user.role == Role.DOCTOR
        and DoctorProfile.objects.filter(user=user, department__code=ident).exists()
    )


def register() -> None:
    from hub.realtime.topics import register_topic

    register_topic("visit", visit_topic_authorize)
    register_topic("consult_queue", doctor_queue_authorize)
    register_topic("consult_dept", department_queue_authorize)


def publications(visit: Visit) -> list[Publication]:
    """``publish`` for lifecycle.transition: the visit as its subscribers see it."""
    from .selectors import visit_row

    row = visit_row(visit, viewer=None)
    # No clinical free text on the wire of a push: clients fetch the visit for it.
    row["chief_complaint"] = ""
    if row["prior_record"]:
        row["prior_record"] = {**row["prior_record"], "diagnosis": ""}
    return [(visit_topic(visit.public_id), UPDATED, {"visit": row})]


def called(visit: Visit) -> Publication:
    return (
        visit_topic(visit.public_id),
        CALLED,
        {
            "visit_id": visit.public_id,
            "room_id": f"conv-{visit.conversation_id}",
            "conversation_id": visit.conversation_id,
        },
    )
